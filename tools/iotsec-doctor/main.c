/* iotsec-doctor: the doctor's side of a kit's doctor stream (SPEC 8, 9). The doctor keeps a key
 * and a certificate of the patient's home, draws the stream's root, grants it to the kit (a
 * signed DOCTOR_GRANT), acknowledges its emergencies (EMERGENCY_ACK) and opens its sealed
 * readings with the root kept here. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "encoding.h"
#include "file.h"
#include "iotsec-doctor.h"
#include "log.h"
#include "version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: iotsec-doctor [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"A doctor's keys for the readings of a patient's kit.\n"
		"\n"
		"commands:\n"
		"  init --dir D --name N [--home H]\n"
		"                     a key (D/doctor.key) and a certificate request\n"
		"                     (D/doctor.csr) for the home's iotsec-pki enrol --csr\n"
		"  grant --dir D --kit K --kit-cert FILE [--start E]\n"
		"        (--relay URL [--relay-name N] | --out FILE)\n"
		"                     a new doctor stream for kit K: its root stays in\n"
		"                     D/roots/K.json, the signed grant goes to the relay or FILE\n"
		"  ack --dir D --kit K --seq N (--relay URL [--relay-name N] | --out FILE)\n"
		"                     acknowledge K's emergency records up to seq N\n"
		"  fetch --dir D --relay URL [--relay-name N] [--format text|csv|json|fhir]\n"
		"        [--follow] [--max N]\n"
		"                     the readings the relay keeps for this doctor, opened\n"
		"  read --dir D [--json]\n"
		"                     open sealed readings, hex lines on standard input\n"
		"                     (mosquitto_sub -F %%x)\n"
		"\n"
		"options:\n"
		"  -c, --config FILE  the home's configuration, for the stream schedule, the\n"
		"                     broker and the relay (default %s, or the defaults)\n"
		"  -h, --help         this text (COMMAND --help: the command's)\n"
		"      --version      the version\n"
		"exit status: 0 done, 1 failed (or a reading refused), 2 wrong command line\n",
		CONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
	int n = 1;

	crypto_wipe_json();
	log_init("iotsec-doctor", LOG_WARNING);
	/* -c anywhere before the command; what is left is the command and its own arguments. */
	for (int i = 1; i < argc; i++) {
		if (n == 1 && (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0)) {
			if (i + 1 == argc) {
				fprintf(stderr, "iotsec-doctor: %s needs a file\n", argv[i]);
				return DOCTOR_EXIT_USAGE;
			}
			doctor_config_path = argv[++i];
		} else if (n == 1 && strncmp(argv[i], "--config=", 9) == 0) {
			doctor_config_path = argv[i] + 9;
		} else if (n == 1 && strcmp(argv[i], "--version") == 0) {
			printf("iotsec-doctor (iotsec) %s\n", IOTSEC_VERSION);
			return DOCTOR_EXIT_OK;
		} else if (n == 1 && is_help(argv[i])) {
			usage(stdout);
			return DOCTOR_EXIT_OK;
		} else if (n == 1 && argv[i][0] == '-') {
			fprintf(stderr, "iotsec-doctor: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return DOCTOR_EXIT_USAGE;
		} else {
			argv[n++] = argv[i];
		}
	}
	if (n < 2) {
		usage(stderr);
		return DOCTOR_EXIT_USAGE;
	}
	argc = n - 1, argv++;
	if (strcmp(argv[0], "init") == 0)
		return cmd_init(argc, argv);
	if (strcmp(argv[0], "grant") == 0)
		return cmd_grant(argc, argv);
	if (strcmp(argv[0], "ack") == 0)
		return cmd_ack(argc, argv);
	if (strcmp(argv[0], "read") == 0)
		return cmd_read(argc, argv);
	if (strcmp(argv[0], "fetch") == 0)
		return cmd_fetch(argc, argv);
	fprintf(stderr, "iotsec-doctor: unknown command '%s' (try --help)\n", argv[0]);
	return DOCTOR_EXIT_USAGE;
}
