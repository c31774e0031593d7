/* Sizes of the names and paths that configuration and model files hold, shared by every layer
 * that keeps them in fixed buffers (drivers/, models/, agent/). */
#ifndef PDM_NAMES_H
#define PDM_NAMES_H

#define PDM_NAME_MAX 64 /* section names, device_id: [A-Za-z0-9_.-]{1,64} */
#define PDM_PATH_MAX 1024

#endif
