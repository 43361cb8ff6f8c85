/* iotsecctl's commands, one file each. Each takes argv from the command name on and returns the
 * exit code. */
#ifndef IOTSECCTL_H
#define IOTSECCTL_H

int cmd_pool(int argc, char **argv);

#endif
