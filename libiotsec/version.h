/* The version every program prints for --version; the build may set it (-DIOTSEC_VERSION=...). */
#ifndef IOTSEC_VERSION_H
#define IOTSEC_VERSION_H

#ifndef IOTSEC_VERSION
#define IOTSEC_VERSION "0.1"
#endif

#endif
