package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCommand probes a running dbops, for container HEALTHCHECKs in
// images that carry no curl or wget.
func newHealthcheckCommand(e *env) *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when a running dbops answers its health endpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			client := &http.Client{Timeout: timeout}
			res, err := client.Get(url)
			if err != nil {
				return exitError{code: 1, msg: fmt.Sprintf("healthcheck %s: %v", url, err)}
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return exitError{code: 1, msg: fmt.Sprintf("healthcheck %s: %s", url, res.Status)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:9090/healthz", "endpoint to probe")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for an answer")
	return cmd
}
