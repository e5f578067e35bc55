// Storage: a block of bytes from the caching allocator, shared by the tensors that view it.
#include "rill/core/storage.h"

#include "rill/core/allocator.h"

namespace rill {

Storage::Storage(size_t n) : data(Allocator::instance().allocate(n)), bytes(n) {}
Storage::~Storage() { Allocator::instance().deallocate(data, bytes); }

}  // namespace rill
