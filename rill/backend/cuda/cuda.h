// The CUDA backend's entry points. Without -DRILL_CUDA=ON they exist as stubs that fail clearly.
#pragma once

namespace rill::cuda {

bool available();  // true when built with CUDA and a device is present
void require();    // throws a clear error unless available()

}  // namespace rill::cuda
