package storage

import "sync"

// stripes are a fixed set of locks that names share by hash: the names in
// use are unbounded, the memory is not, and two names rarely share a lock.
type stripes [256]sync.RWMutex

// of returns the lock of name.
func (s *stripes) of(name string) *sync.RWMutex {
	// FNV-1a, inline: no allocation on every request.
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return &s[h%uint32(len(s))]
}
