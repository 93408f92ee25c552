// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dm-poke: the real ferry-dm (devmodel/dm-main.h: the same options,
 * wiring, ioreq server and confinement as the installed program) with one
 * more device type, the test-only poke device of poke-dev.c, which
 * registers itself from a constructor like every device.  Run by
 * run-confined-dm.py's open-shadow, execve, socket-inet and ptrace cases.
 */
#include "devmodel/dm-main.h"

int main(int argc, char **argv)
{
    return dm_main(argc, argv);
}
