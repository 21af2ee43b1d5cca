int blindai_kernels_placeholder(void);
