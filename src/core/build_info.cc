#include "core/build_info.h"

#include "cascade_build_commit.h"  // generated at every build (cmake/build_commit.cmake)

namespace cascade {

std::string build_commit() { return CASCADE_BUILD_COMMIT; }

}  // namespace cascade
