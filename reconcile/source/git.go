package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/amanat/dbops/spec"
)

// GitOptions configures a git source.
type GitOptions struct {
	URL      string // https://, ssh:// or scp-like git@host:org/repo.git, or a local path/file:// URL
	Ref      string // branch name, e.g. main
	Path     string // subfolder holding the stacks, "" for the root
	CacheDir string // where the clone and the snapshots live
	// HTTPS token auth: the token is read from TokenEnv or TokenFile (the
	// file is re-read on each fetch); username "git" unless TokenUser is set.
	TokenEnv, TokenFile, TokenUser string
	// SSH: private key file (+ optional passphrase from env PassphraseEnv)
	// and a known_hosts file; host keys are always verified.
	SSHKeyFile, KnownHostsFile, PassphraseEnv string
	// VerifyKeyRing: file of armored OpenPGP public keys; when set, the head
	// commit must be signed by one of them.
	VerifyKeyRing string
}

// Git is a Source following one branch of a git repository.
type Git struct {
	opts    GitOptions
	url     string // URL given to git, without user:password
	shown   string // URL for errors, redacted
	ep      *transport.Endpoint
	path    string // cleaned opts.Path
	keyRing string // armored keys, "" when commits are not verified
	refName plumbing.ReferenceName

	mu   sync.Mutex
	repo *git.Repository
}

var _ Source = (*Git)(nil)

const (
	remoteName = "origin"
	repoDir    = "repo"
)

// NewGit checks the options and returns a git source; nothing is fetched
// until the first Fetch.
func NewGit(opts GitOptions) (*Git, error) {
	spec.RegisterSecrets(spec.Password(opts.URL))
	g := &Git{opts: opts, shown: spec.Redact(opts.URL)}
	if opts.URL == "" {
		return nil, errors.New("git source: URL is required")
	}
	if opts.Ref == "" {
		return nil, fmt.Errorf("git source %s: ref (branch) is required", g.shown)
	}
	g.refName = plumbing.NewBranchReferenceName(opts.Ref)
	if err := g.refName.Validate(); err != nil {
		return nil, fmt.Errorf("git source %s: ref %q: %w", g.shown, opts.Ref, err)
	}
	if opts.CacheDir == "" {
		return nil, fmt.Errorf("git source %s: cache dir is required", g.shown)
	}
	p, err := subPath(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", g.shown, err)
	}
	g.path = p
	if err := g.parseURL(); err != nil {
		return nil, err
	}
	if opts.VerifyKeyRing != "" {
		if g.keyRing, err = readKeyRing(opts.VerifyKeyRing); err != nil {
			return nil, fmt.Errorf("git source %s: %w", g.shown, err)
		}
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("git source %s: %w", g.shown, err)
	}
	removeTemps(opts.CacheDir)
	return g, nil
}

// Changed returns nil: a git source is polled.
func (g *Git) Changed() <-chan struct{} { return nil }

// Close releases nothing; snapshots stay in the cache dir.
func (g *Git) Close() error { return nil }

// Release deletes snapshots other than those of the given commit hashes.
func (g *Git) Release(keep ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	release(g.opts.CacheDir, keep)
}

// Fetch fetches the branch and returns its head commit, materialised.
func (g *Git) Fetch(ctx context.Context) (Revision, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	where := fmt.Sprintf("git fetch %s (ref %s)", g.shown, g.opts.Ref)
	head, err := g.fetch(ctx)
	if err != nil {
		return Revision{}, g.scrub(fmt.Errorf("%s: %w", where, err))
	}
	commit, err := g.repo.CommitObject(head)
	if err != nil {
		return Revision{}, fmt.Errorf("%s: commit %s: %w", where, head, err)
	}
	if err := g.verify(commit); err != nil {
		// The ID lets the caller report which revision it rejects.
		return Revision{ID: head.String()}, fmt.Errorf("%s: %w", where, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return Revision{}, fmt.Errorf("%s: commit %s: %w", where, head, err)
	}
	if g.path != "" {
		entry, err := tree.FindEntry(filepath.ToSlash(g.path))
		if err != nil || entry.Mode != filemode.Dir {
			return Revision{}, fmt.Errorf("%s: path %q is not a folder in commit %s", where, g.opts.Path, head)
		}
	}
	id := head.String()
	root, err := materialise(g.opts.CacheDir, id, func(tmp string) error {
		return writeTree(ctx, tree, tmp)
	})
	if err != nil {
		return Revision{}, fmt.Errorf("%s: %w", where, err)
	}
	return Revision{ID: id, Root: root, Path: filepath.Join(root, g.path)}, nil
}

// fetch updates the local bare clone (creating it on first use) with the
// branch head, shallow, and returns the head's hash.
func (g *Git) fetch(ctx context.Context) (plumbing.Hash, error) {
	if err := g.open(); err != nil {
		return plumbing.ZeroHash, err
	}
	auth, err := g.auth()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	local := plumbing.NewRemoteReferenceName(remoteName, g.opts.Ref)
	refSpec := config.RefSpec(fmt.Sprintf("+%s:%s", g.refName, local))
	err = g.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{refSpec},
		Depth:      1,
		Auth:       auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, g.explainRefusal(err)
	}
	ref, err := g.repo.Reference(local, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("branch %s not fetched: %w", g.opts.Ref, err)
	}
	return ref.Hash(), nil
}

// open opens the bare clone in CacheDir/repo, creating it (or recreating a
// broken one, or one of another URL) as needed.
func (g *Git) open() error {
	if g.repo != nil {
		return nil
	}
	dir := filepath.Join(g.opts.CacheDir, repoDir)
	if repo, err := git.PlainOpen(dir); err == nil {
		if remote, err := repo.Remote(remoteName); err == nil {
			if urls := remote.Config().URLs; len(urls) == 1 && urls[0] == g.url {
				g.repo = repo
				return nil
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	repo, err := git.PlainInit(dir, true)
	if err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{g.url},
		Fetch: []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", g.refName, plumbing.NewRemoteReferenceName(remoteName, g.opts.Ref)))},
	})
	if err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	g.repo = repo
	return nil
}

// verify checks the commit's OpenPGP signature against the key ring, when
// one is configured.
func (g *Git) verify(c *object.Commit) error {
	if g.keyRing == "" {
		return nil
	}
	if c.PGPSignature == "" {
		return fmt.Errorf("commit %s is not signed: %w", c.Hash, ErrUnverified)
	}
	if _, err := c.Verify(g.keyRing); err != nil {
		return fmt.Errorf("commit %s: %w: %v", c.Hash, ErrUnverified, err)
	}
	return nil
}

// OriginURL returns the URL of the "origin" remote of the git work tree
// holding path, "" when there is none: validate, plan and apply take
// github/gitlab notification defaults from it as `dbops run` does from --repo.
func OriginURL(path string) string {
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		path = filepath.Dir(path)
	}
	repo, err := git.PlainOpenWithOptions(path, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return ""
	}
	rem, err := repo.Remote("origin")
	if err != nil || len(rem.Config().URLs) == 0 {
		return ""
	}
	return rem.Config().URLs[0]
}
