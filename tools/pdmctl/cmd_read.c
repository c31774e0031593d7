#include "pdmctl.h"
int cmd_read(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
