#define WEIR_GIT_DESCRIBE "da734ca-dirty"
