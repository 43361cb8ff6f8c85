#include "refusals.h"

bool refusals_note(struct refusals *r, uint32_t addr, int code)
{
	r->total++;
	for (size_t i = 0; i < r->n; i++)
		if (r->seen[i].addr == addr && r->seen[i].code == code)
			return false;
	if (r->n == REFUSALS_MAX)
		return false;
	r->seen[r->n].addr = addr;
	r->seen[r->n].code = code;
	r->n++;
	return true;
}
