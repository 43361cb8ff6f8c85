/* The footprint bench's baseline (tests/bench/footprint.sh): a program that only waits. Run under
 * qemu-user, its memory is what the emulator itself holds (qemu, its translation cache, the
 * guest's C library), to be taken off each daemon's figure measured the same way. */
#include <unistd.h>

int main(void)
{
	for (;;)
		pause();
}
