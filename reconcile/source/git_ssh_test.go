package source

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer is a git server on 127.0.0.1: it accepts one client key and runs
// `git upload-pack` for exec requests.
type sshServer struct {
	addr    string
	hostKey ssh.PublicKey
	ln      net.Listener
	wg      sync.WaitGroup
}

func newSSHServer(t *testing.T, clientKey ssh.PublicKey) *sshServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	must(t, err)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), clientKey.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown client key")
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	s := &sshServer{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey(), ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, cfg)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *sshServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return // e.g. the client refused the host key
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, chReqs)
	}
}

// session runs the one exec request of a session: git-upload-pack '<path>'.
func (s *sshServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			req.Reply(false, nil)
			continue
		}
		command := string(req.Payload[4:])
		name, arg, _ := strings.Cut(command, " ")
		path := strings.ReplaceAll(strings.Trim(arg, "'"), `'\''`, "'")
		if name != "git-upload-pack" {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		cmd := exec.Command("git", "upload-pack", path)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return
		}
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		code := uint32(1)
		if err := cmd.Start(); err == nil {
			go func() { io.Copy(stdin, ch); stdin.Close() }()
			if cmd.Wait() == nil {
				code = 0
			}
		}
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, code)
		ch.SendRequest("exit-status", false, status)
		return
	}
}

// knownHosts writes a known_hosts file with key for addr.
func knownHosts(t *testing.T, addr string, key ssh.PublicKey) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	must(t, os.WriteFile(file, []byte(line), 0o600))
	return file
}

func TestGitSSH(t *testing.T) {
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	sshPub, err := ssh.NewPublicKey(clientPub)
	must(t, err)
	const passphrase = "key-passphrase-42"
	block, err := ssh.MarshalPrivateKeyWithPassphrase(clientPriv, "", []byte(passphrase))
	must(t, err)
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	must(t, os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600))
	t.Setenv("DBOPS_TEST_PASSPHRASE", passphrase)

	o := newOrigin(t)
	head := o.commit(map[string]string{"stacks/app.yaml": "over ssh\n"}, nil)
	srv := newSSHServer(t, sshPub)
	url := "ssh://git@" + srv.addr + o.bare
	opts := func(known string) GitOptions {
		return GitOptions{URL: url, Ref: "main", Path: "stacks", CacheDir: t.TempDir(),
			SSHKeyFile: keyFile, KnownHostsFile: known, PassphraseEnv: "DBOPS_TEST_PASSPHRASE"}
	}

	t.Run("unknown host key", func(t *testing.T) {
		_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
		must(t, err)
		other, err := ssh.NewSignerFromKey(otherPriv)
		must(t, err)
		for name, known := range map[string]string{
			"other host":   knownHosts(t, "127.0.0.1:1", srv.hostKey),
			"key mismatch": knownHosts(t, srv.addr, other.PublicKey()),
		} {
			g, err := NewGit(opts(known))
			must(t, err)
			err = fetchErr(t, g)
			if !strings.Contains(err.Error(), "knownhosts") || strings.Contains(err.Error(), passphrase) {
				t.Fatalf("%s: err = %v, want a host key error without the passphrase", name, err)
			}
		}
	})
	t.Run("known host key", func(t *testing.T) {
		g, err := NewGit(opts(knownHosts(t, srv.addr, srv.hostKey)))
		must(t, err)
		r := fetch(t, g)
		if r.ID != head {
			t.Fatalf("ID %s, want %s", r.ID, head)
		}
		wantFile(t, r.Path, "app.yaml", "over ssh\n")
		next := o.commit(map[string]string{"stacks/app.yaml": "next\n"}, nil)
		if r := fetch(t, g); r.ID != next {
			t.Fatalf("second fetch: ID %s, want %s", r.ID, next)
		}
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		t.Setenv("DBOPS_TEST_PASSPHRASE", "wrong-passphrase")
		g, err := NewGit(opts(knownHosts(t, srv.addr, srv.hostKey)))
		must(t, err)
		if err := fetchErr(t, g); strings.Contains(err.Error(), "wrong-passphrase") || !strings.Contains(err.Error(), keyFile) {
			t.Fatalf("err = %v, want one naming the key file without the passphrase", err)
		}
	})
	t.Run("no known_hosts file", func(t *testing.T) {
		o := opts("")
		if _, err := NewGit(o); err == nil || !strings.Contains(err.Error(), "known_hosts") {
			t.Fatalf("NewGit without known_hosts: err = %v, want a known_hosts error", err)
		}
		o.KnownHostsFile = filepath.Join(t.TempDir(), "missing")
		if _, err := NewGit(o); err == nil || !strings.Contains(err.Error(), "known_hosts") {
			t.Fatalf("NewGit with a missing known_hosts: err = %v, want a known_hosts error", err)
		}
	})
}
