#include "refusals.h"

bool refusals_note(struct refusals *r, uint32_t addr, int code)
{
	r->total++;
	for (size_t i = 0; i < r->n; i++)
		if (r->seen[i].addr == addr && r->seen[i].code == code)
			return false;
	r->seen[r->next].addr = addr;
	r->seen[r->next].code = code;
	r->next = (r->next + 1) % REFUSALS_MAX;
	if (r->n < REFUSALS_MAX)
		r->n++;
	return true;
}
