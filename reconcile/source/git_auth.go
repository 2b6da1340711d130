package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/amanat/dbops/spec"
)

// parseURL sets g.url and g.ep from the options and checks that the
// credential options suit the URL's protocol.
func (g *Git) parseURL() error {
	o := g.opts
	ep, err := transport.NewEndpoint(o.URL)
	if err != nil {
		// The parse error quotes the URL, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("git source %s: invalid URL: %v", g.shown, err)
	}
	g.ep, g.url = ep, o.URL
	token := o.TokenEnv != "" || o.TokenFile != ""
	sshOpt := o.SSHKeyFile != "" || o.KnownHostsFile != "" || o.PassphraseEnv != ""
	switch ep.Protocol {
	case "http", "https":
		if sshOpt {
			return fmt.Errorf("git source %s: SSH key and known_hosts options need an ssh:// or git@host:path URL", g.shown)
		}
		if o.TokenEnv != "" && o.TokenFile != "" {
			return fmt.Errorf("git source %s: set the token from an environment variable or from a file, not both", g.shown)
		}
		u, err := url.Parse(o.URL)
		if err != nil {
			return fmt.Errorf("git source %s: invalid URL", g.shown)
		}
		u.User = nil // credentials go through Auth, never into the clone's config
		g.url = u.String()
	case "ssh":
		if token {
			return fmt.Errorf("git source %s: token auth needs an https:// URL", g.shown)
		}
		if o.KnownHostsFile == "" {
			return fmt.Errorf("git source %s: SSH needs a known_hosts file holding the server's host key (host keys are always verified)", g.shown)
		}
		if _, err := os.Stat(o.KnownHostsFile); err != nil {
			return fmt.Errorf("git source %s: known_hosts file: %w", g.shown, err)
		}
		if o.SSHKeyFile == "" {
			return fmt.Errorf("git source %s: SSH needs a private key file", g.shown)
		}
	case "file":
		if token || sshOpt {
			return fmt.Errorf("git source %s: credentials are not used for a local repository", g.shown)
		}
		if abs, err := filepath.Abs(ep.Path); err == nil && !strings.HasPrefix(o.URL, "file://") {
			g.url = abs
		}
	default:
		if token || sshOpt {
			return fmt.Errorf("git source %s: credentials are not supported for %s://", g.shown, ep.Protocol)
		}
	}
	return nil
}

// auth returns the credentials for one fetch, reading the token file and
// the SSH key anew each time so rotated secrets are picked up.
func (g *Git) auth() (transport.AuthMethod, error) {
	o := g.opts
	switch g.ep.Protocol {
	case "http", "https":
		token, err := g.token()
		if err != nil {
			return nil, err
		}
		if token != "" {
			user := o.TokenUser
			if user == "" {
				user = "git"
			}
			return &githttp.BasicAuth{Username: user, Password: token}, nil
		}
		if g.ep.User != "" || g.ep.Password != "" {
			return &githttp.BasicAuth{Username: g.ep.User, Password: g.ep.Password}, nil
		}
	case "ssh":
		user := g.ep.User
		if user == "" {
			user = "git"
		}
		var pass string
		if o.PassphraseEnv != "" {
			pass = os.Getenv(o.PassphraseEnv)
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, pass)
		if err != nil {
			return nil, fmt.Errorf("SSH key %s: %w", o.SSHKeyFile, err)
		}
		db, err := gitssh.NewKnownHostsDb(o.KnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("known_hosts file %s: %w", o.KnownHostsFile, err)
		}
		port := g.ep.Port
		if port <= 0 {
			port = gitssh.DefaultPort
		}
		keys.HostKeyCallback = db.HostKeyCallback()
		keys.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(g.ep.Host, strconv.Itoa(port)))
		return keys, nil
	}
	return nil, nil
}

// token returns the HTTPS token from the environment or the token file,
// "" when none is configured.
func (g *Git) token() (string, error) {
	o := g.opts
	switch {
	case o.TokenEnv != "":
		t := strings.TrimSpace(os.Getenv(o.TokenEnv))
		if t == "" {
			return "", fmt.Errorf("token: environment variable %s is not set or empty", o.TokenEnv)
		}
		spec.RegisterSecrets(t)
		return t, nil
	case o.TokenFile != "":
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("token file %s is empty", o.TokenFile)
		}
		spec.RegisterSecrets(t)
		return t, nil
	}
	return "", nil
}

// scrub masks every credential of the source in err's message, keeping the
// chain for errors.Is / errors.As.
func (g *Git) scrub(err error) error {
	secrets := []string{g.ep.Password, spec.Password(g.opts.URL)}
	if t, terr := g.token(); terr == nil {
		secrets = append(secrets, t)
	}
	if g.opts.PassphraseEnv != "" {
		secrets = append(secrets, os.Getenv(g.opts.PassphraseEnv))
	}
	msg := spec.Scrub(err.Error(), secrets...)
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

// scrubbed is an error whose message has credentials masked.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// readKeyRing reads every armored OpenPGP public key block in the file and
// returns the keys as one armored key ring, as Commit.Verify takes it.
func readKeyRing(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("verify key ring: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 4096) // armor.Decode keeps reading from it
	var keys openpgp.EntityList
	for {
		block, err := armor.Decode(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("verify key ring %s: %w", path, err)
		}
		if block.Type != openpgp.PublicKeyType {
			return "", fmt.Errorf("verify key ring %s: %q block, want %q", path, block.Type, openpgp.PublicKeyType)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return "", fmt.Errorf("verify key ring %s: %w", path, err)
		}
		keys = append(keys, el...)
	}
	if len(keys) == 0 {
		return "", fmt.Errorf("verify key ring %s: no armored public key found", path)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return "", err
	}
	for _, e := range keys {
		if err := e.Serialize(w); err != nil {
			return "", fmt.Errorf("verify key ring %s: %w", path, err)
		}
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// refusedError says plainly that the server refused the credentials (go-git
// reports a 401 as "authentication required: " and the server's body, often
// empty), and which credentials were sent. It wraps the go-git error.
type refusedError struct {
	msg string
	err error
}

func (e *refusedError) Error() string { return e.msg }
func (e *refusedError) Unwrap() error { return e.err }

// explainRefusal turns go-git's 401/403 errors into a refusedError.
func (g *Git) explainRefusal(err error) error {
	var code, what string
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired):
		code, what = "401", "authentication required"
	case errors.Is(err, transport.ErrAuthorizationFailed):
		code, what = "403", "authorization failed"
	default:
		return err
	}
	sent := "no credentials were sent: give --token-env or --token-file (or user:password in the URL)"
	switch {
	case g.opts.TokenEnv != "":
		sent = "the token from environment variable " + g.opts.TokenEnv + " was refused: it is wrong, expired, or lacks read access to the repository"
	case g.opts.TokenFile != "":
		sent = "the token in " + g.opts.TokenFile + " was refused: it is wrong, expired, or lacks read access to the repository"
	case g.ep.User != "" || g.ep.Password != "":
		sent = "the user and password in the URL were refused"
	}
	if g.ep.Protocol != "http" && g.ep.Protocol != "https" {
		return &refusedError{msg: fmt.Sprintf("the server refused access (%s)", what), err: err}
	}
	return &refusedError{msg: fmt.Sprintf("the server answered HTTP %s (%s): %s", code, what, sent), err: err}
}
