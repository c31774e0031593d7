#include "pdmctl.h"
int cmd_subscribe(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
