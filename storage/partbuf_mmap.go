//go:build linux || darwin || freebsd || netbsd || openbsd

package storage

import "syscall"

// allocPart returns a size-byte buffer mapped outside the Go heap and the
// function that unmaps it. Pages become resident only as they are written.
func allocPart(size int) ([]byte, func()) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, size), func() {} // out of mappings: the heap works too
	}
	return b, func() { _ = syscall.Munmap(b) }
}
