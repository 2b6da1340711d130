package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/amanat/dbops/reconcile"
	"github.com/amanat/dbops/reconcile/loop"
	"github.com/amanat/dbops/reconcile/notify"
	"github.com/amanat/dbops/reconcile/pool"
	"github.com/amanat/dbops/reconcile/shard"
	"github.com/amanat/dbops/reconcile/source"
	"github.com/amanat/dbops/spec"
)

type runCommand struct {
	*env
	git         source.GitOptions
	dir         string
	cacheDir    string
	interval    time.Duration
	listen      string
	concurrency int
	logFormat   string
	logLevel    string
	grace       time.Duration
	hookEnv     string
	hookFile    string
	allowRisky  bool
	shards      int
	shardIndex  int
	pool        pool.Options
	noPool      bool
}

func newRunCommand(e *env) *cobra.Command {
	c := &runCommand{env: e}
	cmd := &cobra.Command{
		Use:   "run (--repo URL --ref BRANCH [--path SUBDIR] | --dir PATH)",
		Short: "Keep the live stacks equal to a git branch or a folder, continuously",
		Long: `Run fetches the desired state from a git branch (--repo) or a local folder
(--dir), and reconciles every stack on each new revision and every --interval,
so drift is corrected. A revision that fails to load, validate or verify is
rejected and the last good one stays in force. Before applying to a stack it
takes the stack's lock, so two dbops processes never apply to one stack at once.

HTTP on --listen: /healthz, /readyz, /metrics (Prometheus), /status (JSON) and
POST /hooks/git (GitHub's X-Hub-Signature-256 with the --webhook-secret-*).
SIGTERM or SIGINT: no new migration batch starts; the batch under way (a run of
consecutive transactional migrations, or one NO TRANSACTION migration) gets
--grace to finish before its statement is cancelled, which rolls back its
transaction; locks are released, and dbops exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd.Context()) },
	}
	f := cmd.Flags()
	f.StringVar(&c.git.URL, "repo", "", "git repository URL (https://, ssh://, git@host:org/repo.git or a local path)")
	f.StringVar(&c.git.Ref, "ref", "main", "branch to follow")
	f.StringVar(&c.git.Path, "path", "", "folder of the stacks inside the repository (or inside --dir)")
	f.StringVar(&c.git.TokenEnv, "token-env", "", "environment variable holding an HTTPS token")
	f.StringVar(&c.git.TokenFile, "token-file", "", "file holding an HTTPS token (re-read on each fetch)")
	f.StringVar(&c.git.TokenUser, "token-user", "", "user name sent with the token (default git)")
	f.StringVar(&c.git.SSHKeyFile, "ssh-key", "", "SSH private key file")
	f.StringVar(&c.git.KnownHostsFile, "known-hosts", "", "known_hosts file; SSH host keys are always verified")
	f.StringVar(&c.git.PassphraseEnv, "ssh-passphrase-env", "", "environment variable holding the SSH key's passphrase")
	f.StringVar(&c.git.VerifyKeyRing, "verify-commits", "", "file of armored OpenPGP public keys; the head commit must be signed by one")
	f.StringVar(&c.dir, "dir", "", "local folder to follow instead of a repository (watched with fsnotify)")
	f.StringVar(&c.cacheDir, "cache-dir", defaultCacheDir(), "where the clone and revision snapshots live")
	f.DurationVar(&c.interval, "interval", time.Minute, "time between fetches and drift checks")
	f.StringVar(&c.listen, "listen", "127.0.0.1:9090", "HTTP address for health, metrics, status and the webhook (0.0.0.0:9090 in a container)")
	f.IntVar(&c.concurrency, "concurrency", 4, "stacks reconciled at once")
	f.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&c.logLevel, "log-level", "info", "least severe log level written: debug, info, warn or error")
	f.DurationVar(&c.grace, "grace", reconcile.DefaultGrace, "on shutdown, how long a running migration may finish before it is cancelled")
	f.StringVar(&c.hookEnv, "webhook-secret-env", "", "environment variable holding the webhook secret")
	f.StringVar(&c.hookFile, "webhook-secret-file", "", "file holding the webhook secret")
	f.BoolVar(&c.allowRisky, "allow-risky", false, "apply risky changes outside maintenance windows (default: wait for a window)")
	f.DurationVar(&c.pool.Idle, "pool-idle", 5*time.Minute, "close pooled plan connections unused this long (keep it above --interval)")
	f.IntVar(&c.pool.MaxPerServer, "pool-per-server", 16, "PostgreSQL databases / Redis URLs whose plan connection is kept between cycles, per server and credentials")
	f.BoolVar(&c.noPool, "no-pool", false, "connect and disconnect for every plan instead of pooling")
	f.IntVar(&c.shards, "shards", 1, "replicas sharing the stacks: this one reconciles and backs up only the stacks of its shard (README \"Sharding\")")
	f.IntVar(&c.shardIndex, "shard-index", -1, "this replica's shard, 0 to --shards-1; -1 takes the StatefulSet ordinal ending the hostname (dbops-2 → 2)")
	return cmd
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "dbops")
	}
	return filepath.Join(os.TempDir(), "dbops-cache")
}

func (c *runCommand) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(c.logLevel)) {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.logLevel)
	}
	o := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(c.stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.stderr, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", c.logFormat)
}

// config is the effective configuration, logged at start: secrets are
// named by where they come from, never shown; the repository URL redacted.
func (c *runCommand) config(sh shard.Spec) []any {
	return []any{"repo", spec.Redact(c.git.URL), "ref", c.git.Ref, "path", c.git.Path, "dir", c.dir, "cache_dir", c.cacheDir,
		"token_env", c.git.TokenEnv, "token_file", c.git.TokenFile, "ssh_key", c.git.SSHKeyFile, "known_hosts", c.git.KnownHostsFile,
		"verify_commits", c.git.VerifyKeyRing, "interval", c.interval.String(), "listen", c.listen, "concurrency", c.concurrency,
		"log_format", c.logFormat, "log_level", c.logLevel, "grace", c.grace.String(), "connect_timeout", c.connectTimeout.String(),
		"webhook_secret_env", c.hookEnv, "webhook_secret_file", c.hookFile, "allow_risky", c.allowRisky,
		"pool", !c.noPool, "pool_idle", c.pool.Idle.String(), "pool_per_server", c.pool.MaxPerServer,
		"shard", sh.Index, "shards", sh.Count, "skip_backups", c.noBackups}
}

func (c *runCommand) source() (loop.Source, error) {
	switch {
	case c.git.URL != "" && c.dir != "":
		return nil, errors.New("give --repo or --dir, not both")
	case c.git.URL != "":
		c.git.CacheDir = c.cacheDir
		return source.NewGit(c.git)
	case c.dir != "":
		return source.NewDir(source.DirOptions{Dir: c.dir, Path: c.git.Path, CacheDir: c.cacheDir})
	}
	return nil, errors.New("give --repo URL (with --ref) or --dir PATH")
}

// webhookSecret reads the shared secret from the environment or a file.
func (c *runCommand) webhookSecret() ([]byte, error) {
	switch {
	case c.hookEnv != "" && c.hookFile != "":
		return nil, errors.New("give --webhook-secret-env or --webhook-secret-file, not both")
	case c.hookEnv != "":
		v, ok := os.LookupEnv(c.hookEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("--webhook-secret-env: environment variable %s is not set or empty", c.hookEnv)
		}
		spec.RegisterSecrets(v)
		return []byte(v), nil
	case c.hookFile != "":
		b, err := os.ReadFile(c.hookFile)
		if err != nil {
			return nil, fmt.Errorf("--webhook-secret-file: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return nil, fmt.Errorf("--webhook-secret-file %s is empty", c.hookFile)
		}
		spec.RegisterSecrets(v)
		return []byte(v), nil
	}
	return nil, nil
}

func (c *runCommand) run(ctx context.Context) error {
	log, err := c.logger()
	if err != nil {
		return exitError{code: 1, msg: err.Error()}
	}
	host, _ := os.Hostname()
	sh, err := shard.Resolve(c.shards, c.shardIndex, host)
	if err != nil {
		return exitError{code: 1, msg: err.Error()}
	}
	src, err := c.source()
	if err != nil {
		return exitError{code: 1, msg: err.Error()}
	}
	if cl, ok := src.(io.Closer); ok {
		defer cl.Close()
	}
	secret, err := c.webhookSecret()
	if err != nil {
		return exitError{code: 1, msg: err.Error()}
	}
	var plans *pool.Pool
	if !c.noPool {
		plans = pool.New(c.pool)
		defer plans.Close()
	}
	// the same options as plan and apply, plus what only the loop sets
	o := c.options()
	o.Concurrency, o.Grace, o.AllowRisky, o.Pool = 1, c.grace, c.allowRisky, plans
	metrics := loop.NewMetrics()
	build := loop.ReadBuildInfo(version)
	if commit != "" { // -X main.commit: the Dockerfile builds with -buildvcs=false
		build.Revision = commit
	}
	metrics.SetBuildInfo(build)
	log.Info("dbops starting", append([]any{"version", build.Version, "revision", build.Revision, "goversion", build.GoVersion}, c.config(sh)...)...)
	notifier := notify.New(notify.Options{Logger: log, Count: metrics.CountNotification})
	notifier.Start(ctx)
	l := loop.New(loop.Options{
		Metrics:     metrics,
		Notify:      notifier,
		Shard:       sh,
		RepoURL:     c.git.URL,
		Source:      src,
		Interval:    c.interval,
		Concurrency: c.concurrency,
		Reconcile:   o,
		Logger:      log,
		Holder:      fmt.Sprintf("%s-%d", host, os.Getpid()),
	})

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return exitError{code: 1, msg: fmt.Sprintf("--listen %s: %v", c.listen, err)}
	}
	srv := &http.Server{Handler: maskHandler(l.Handler(loop.HandlerOptions{WebhookSecret: secret})), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	if secret == nil {
		log.Info("webhook disabled: no --webhook-secret-env or --webhook-secret-file; POST /hooks/git answers 401")
	}
	log.Info("dbops run started", "listen", ln.Addr().String(), "interval", c.interval.String(), "concurrency", c.concurrency,
		"shard", sh.Index, "shards", sh.Count)

	// Overrunning grace by far ends the process: a stuck server must not keep
	// a pod in Terminating forever.
	stopped := make(chan struct{})
	go func() {
		<-ctx.Done()
		log.Info("shutting down: stopping stacks between steps, releasing locks", "grace", c.grace.String())
		select {
		case <-stopped:
		case <-time.After(c.grace + c.connectTimeout + 10*time.Second):
			log.Error("shutdown overran its bound; exiting")
			os.Exit(1)
		}
	}()
	err = l.Run(ctx)
	close(stopped)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	log.Info("stopped")
	return err
}
