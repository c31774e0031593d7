/* Reading a whole small file (keys, signatures, models, payloads) into memory, bounded. */
#ifndef PDM_FILEIO_H
#define PDM_FILEIO_H

#include <stddef.h>

/* Reads all of path (at most max bytes) into a malloc'd buffer, *out, with a NUL after the
 * last byte (so text can be used as a string; *len does not count it). The caller frees *out.
 * Returns 0 or a negative errno: what fopen() said, -EFBIG when the file holds more than max
 * bytes, -EIO on a read error, -ENOMEM. On error *out and *len are left alone. */
int pdm_read_file(const char *path, size_t max, unsigned char **out, size_t *len);

#endif
