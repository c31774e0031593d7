/* Bounded whole-file reads (see fileio.h). */
#include "fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int pdm_read_file(const char *path, size_t max, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    unsigned char *buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    /* one byte more than allowed tells a file of exactly max bytes from a larger one */
    size_t n = fread(buf, 1, max + 1, f);
    int rc = ferror(f) ? -EIO : n > max ? -EFBIG : 0;
    fclose(f);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}
