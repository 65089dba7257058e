#include <lmkit/lmkit.hpp>
int main(){}
