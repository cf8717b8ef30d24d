#include "common.h"
const char *beta(void) { return "beta-" COMMON_WORD; }
