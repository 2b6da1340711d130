//go:build !unix

package backup

func chownLike(path, dir string) error { return nil }
