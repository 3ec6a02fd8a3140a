//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package storage

// allocPart returns a size-byte heap buffer (no anonymous mmap here).
func allocPart(size int) ([]byte, func()) { return make([]byte, size), func() {} }
