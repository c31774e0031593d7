#include "pdmctl.h"
int cmd_decode(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
