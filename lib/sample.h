/* One sensor reading as it travels from a bus thread to the main loop. */
#ifndef PDM_SAMPLE_H
#define PDM_SAMPLE_H

#include <stdint.h>

struct pdm_sample {
    int64_t ts_ms;   /* wall clock when the read completed, ms since the Unix epoch */
    int64_t mono_ms; /* monotonic clock at the same moment */
    double value;    /* scaled value (raw * scale + offset); 0 when !ok */
    uint32_t sensor; /* which sensor: an index into the caller's sensor table */
    int32_t err;     /* 0 = ok, else negative errno-style code of the failure */
    char reason[48]; /* short failure reason for logs and Status; "" when ok */
};

#endif
