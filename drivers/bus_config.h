/* The [bus] and [sensor] sections of agent.conf as the drivers and bus threads use them: a
 * driver is handed its bus, the request planner its bus and the sensors on it. agent/config.c
 * reads, defaults and validates them (struct pdm_config holds the arrays). */
#ifndef PDM_BUS_CONFIG_H
#define PDM_BUS_CONFIG_H

#include <stdint.h>

#include "lib/names.h"
#include "registers.h"

enum pdm_bus_driver {
    PDM_DRIVER_MODBUS_TCP = 0,
    PDM_DRIVER_MODBUS_RTU = 1,
    PDM_DRIVER_SYSFS = 2, /* on-board temperatures: hwmon, thermal zones (drivers/sysfs.c) */
    PDM_DRIVER_IIO = 3,   /* on-board accelerometer, window features (drivers/iio.c) */
};

enum pdm_iio_mode { PDM_IIO_BUFFERED = 0, PDM_IIO_POLLED = 1 };
enum pdm_sysfs_source { PDM_SYSFS_NONE = 0, PDM_SYSFS_HWMON, PDM_SYSFS_THERMAL, PDM_SYSFS_FILE };
enum pdm_vib_feature { PDM_FEAT_RMS = 0, PDM_FEAT_PEAK, PDM_FEAT_CREST, PDM_FEAT_KURTOSIS };

struct pdm_bus_cfg {
    char name[PDM_NAME_MAX + 1];
    enum pdm_bus_driver driver;
    int timeout_ms; /* response timeout per request, 10..60000, default 500 */
    /* modbus-tcp */
    char host[256];
    int port; /* default 502 */
    /* modbus-rtu */
    char device[PDM_PATH_MAX];
    int baud;      /* default 9600 */
    char parity;   /* 'N' | 'E' | 'O', default 'N' */
    int data_bits; /* 7 | 8, default 8 */
    int stop_bits; /* 1 | 2, default 1 */
    /* request plans (drivers/plan.h) */
    int max_span;      /* registers per coalesced request, 1..125, default 64 */
    int max_span_bits; /* coils/discrete inputs per request, 1..2000, default 2000 */
    int max_gap;       /* unread registers/bits allowed inside a request, 0..124, default 8 */
    int frame_gap_ms;  /* pause between transactions, 0..1000; -1 = not set (see
                        * pdm_frame_gap_us(): 0 on TCP, 3.5 characters on RTU) */
    /* sysfs and iio: prefix for /sys and /dev ("" = the real system; tests use a fake tree) */
    char root[256];
    /* iio: the device by name (iio_name) or by number (device = iio:deviceN -> iio_index) */
    char iio_name[64];
    int iio_index;          /* -1 = by name */
    int rate_hz;            /* sampling frequency asked of the device, 1..100000 */
    int window;             /* samples per feature window, 2..1048576, default 4096 */
    enum pdm_iio_mode mode; /* default buffered */
    int line;               /* line of the section header */
};

struct pdm_sensor_cfg {
    char name[PDM_NAME_MAX + 1];
    uint32_t bus;             /* index into pdm_config.buses */
    int unit_id;              /* 0..247 (0 = broadcast is rejected for reads; 1..247), default 1 */
    enum pdm_reg_table table; /* holding | input | coil | discrete */
    int address;              /* 0..65535, zero-based as on the wire */
    enum pdm_reg_type type;   /* bool for coil/discrete (the only type there; value 0 or 1) */
    enum pdm_word_order order;
    double scale;  /* default 1.0 */
    double offset; /* default 0.0 */
    int period_ms; /* 10..86400000, default 1000 */
    char unit[16]; /* optional engineering unit ("degC", "mm/s", "W"), default "" */
    /* data quality (models/quality.h): readings outside valid_min..valid_max (-/+INFINITY when
     * not set) or unchanged for frozen_s (0 = off) are flagged; stale_s without a good reading
     * raises a SENSOR_FAULT (0 = default: max(3 periods, 10 s)) */
    double valid_min, valid_max;
    int frozen_s, stale_s;
    /* sysfs bus: one of hwmon (+ label or index), thermal_zone, path */
    enum pdm_sysfs_source source;
    char hwmon[64]; /* hwmon `name`, or the thermal zone's `type` */
    char label[64]; /* hwmon tempM_label, optional */
    int index;      /* hwmon tempM, 1..; 0 = by label or temp1 */
    char path[256]; /* a millidegree file under root, absolute (e.g. /sys/...) */
    /* iio bus: one feature of one axis per sensor; period_ms is the bus's window / rate_hz */
    int axis;                     /* 0 x, 1 y, 2 z */
    enum pdm_vib_feature feature; /* rms | peak (m/s^2) | crest | kurtosis (no unit) */
    int line;
};

#endif
