#include "CBlindAIKernels.h"
int blindai_kernels_placeholder(void) { return 0; }
