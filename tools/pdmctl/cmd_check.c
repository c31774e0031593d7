#include "pdmctl.h"
/* placeholder: being written (issue 4) */
int cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return PDMCTL_EXIT_FAIL;
}
