#define WEIR_GIT_DESCRIBE "c09b55e-dirty"
