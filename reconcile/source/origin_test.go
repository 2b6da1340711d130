package source

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
)

func TestOriginURL(t *testing.T) {
	clone := t.TempDir()
	r, err := git.PlainInit(clone, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{"git@github.com:acme/infra.git"}}); err != nil {
		t.Fatal(err)
	}
	noOrigin := t.TempDir()
	if _, err := git.PlainInit(noOrigin, false); err != nil {
		t.Fatal(err)
	}
	stacks := filepath.Join(clone, "stacks")
	os.MkdirAll(stacks, 0o755)
	file := filepath.Join(stacks, "shop.yaml")
	os.WriteFile(file, []byte("x"), 0o644)
	tests := []struct{ name, path, want string }{
		{"work tree root", clone, "git@github.com:acme/infra.git"},
		{"sub folder", stacks, "git@github.com:acme/infra.git"},
		{"file", file, "git@github.com:acme/infra.git"},
		{"no origin remote", noOrigin, ""},
		{"not a work tree", t.TempDir(), ""},
	}
	for _, tt := range tests {
		if got := OriginURL(tt.path); got != tt.want {
			t.Errorf("%s: OriginURL = %q, want %q", tt.name, got, tt.want)
		}
	}
}
