package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// writeTree writes the files of a git tree into dst: regular files with
// their mode, symlinks as symlinks; submodules are skipped.
func writeTree(ctx context.Context, tree *object.Tree, dst string) error {
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, entry, err := w.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return fmt.Errorf("tree entry %q is not a local path", name)
		}
		switch entry.Mode {
		case filemode.Dir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			perm := fs.FileMode(0o644)
			if entry.Mode == filemode.Executable {
				perm = 0o755
			}
			if err := writeBlob(tree, name, target, perm); err != nil {
				return err
			}
		case filemode.Symlink:
			f, err := tree.TreeEntryFile(&entry)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			link, err := f.Contents()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case filemode.Submodule:
			// A submodule's commit is in another repository: skipped.
		default:
			return fmt.Errorf("%s: unsupported file mode %s", name, entry.Mode)
		}
	}
}

// writeBlob writes the blob at name in tree to target with mode perm.
func writeBlob(tree *object.Tree, name, target string, perm fs.FileMode) error {
	entry, err := tree.FindEntry(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	f, err := tree.TreeEntryFile(entry)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r, err := f.Reader()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer r.Close()
	return writeFile(target, r, perm)
}

// writeFile creates target (which must not exist) from r with mode perm.
func writeFile(target string, r io.Reader, perm fs.FileMode) error {
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(perm); err != nil { // regardless of the umask
		out.Close()
		return err
	}
	return out.Close()
}

// skipDir reports whether a folder below the watched one is left out:
// dot-folders such as .git, and the cache dir when it lies inside.
func skipDir(rel, abs, cacheDir string) bool {
	return strings.HasPrefix(filepath.Base(rel), ".") || abs == cacheDir
}

// walkFolder calls fn for every folder, regular file and symlink below root
// in lexical order, with its slash-separated path relative to root; other
// file types, skipped folders and files deleted meanwhile are left out.
// A non-nil keep further selects the folders and files walked.
func walkFolder(ctx context.Context, root, cacheDir string, keep func(rel string, isDir bool) bool, fn func(rel, abs string, d fs.DirEntry) error) error {
	return filepath.WalkDir(root, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			if abs != root && errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if abs == root {
			return nil
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			return err
		}
		if keep != nil && !keep(filepath.ToSlash(rel), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch t := d.Type(); {
		case t.IsDir():
			if skipDir(rel, abs, cacheDir) {
				return filepath.SkipDir
			}
		case t.IsRegular(), t&fs.ModeSymlink != 0:
		default:
			return nil
		}
		if err := fn(filepath.ToSlash(rel), abs, d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// hashFolder returns the revision ID "sha256:<hex>" of the files below root:
// paths, types, permission bits, contents and symlink targets.
func hashFolder(ctx context.Context, root, cacheDir string, keep func(string, bool) bool) (string, error) {
	h := sha256.New()
	err := walkFolder(ctx, root, cacheDir, keep, func(rel, abs string, d fs.DirEntry) error {
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			fmt.Fprintf(h, "d %s\x00", rel)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(abs)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "l %s\x00%d\x00%s", rel, len(link), link)
		default:
			f, err := os.Open(abs)
			if err != nil {
				return err
			}
			defer f.Close()
			content := sha256.New()
			if _, err := io.Copy(content, f); err != nil {
				return err
			}
			fmt.Fprintf(h, "f %s\x00%o\x00%x\x00", rel, info.Mode().Perm(), content.Sum(nil))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return shaPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

// copyFolder copies the files below root into dst (which exists), keeping
// permission bits and symlinks; dot-folders and cacheDir are skipped.
func copyFolder(ctx context.Context, root, cacheDir, dst string, keep func(string, bool) bool) error {
	return walkFolder(ctx, root, cacheDir, keep, func(rel, abs string, d fs.DirEntry) error {
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(abs)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			f, err := os.Open(abs)
			if err != nil {
				return err
			}
			defer f.Close()
			return writeFile(target, f, info.Mode().Perm())
		}
	})
}
