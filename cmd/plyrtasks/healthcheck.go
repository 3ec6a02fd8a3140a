package main

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/config"
)

func newHealthcheckCmd() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the local plyrtasks answers /readyz (container health checks)",
		Long: `healthcheck asks the plyrtasks process on this machine for /readyz (Redis
reachable and the worker taking tasks) and exits 0 when it answers 200, 1
otherwise. The address is HTTP_ADDR (an unspecified host means 127.0.0.1)
unless --url is given. Meant for HEALTHCHECK in images without a shell or curl.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u := target
			if u == "" {
				cfg, err := config.Load()
				if err != nil {
					return fmt.Errorf("configuration:\n%w", err)
				}
				u = "http://" + dialAddr(cfg.HTTPAddr) + "/readyz"
			}
			hc := &http.Client{Timeout: 5 * time.Second}
			resp, err := hc.Get(u)
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("%s: %v", u, err)}
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return &exitError{code: 1, msg: fmt.Sprintf("%s: %s %s", u, resp.Status, body)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s", body)
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "readiness URL to ask (default http://HTTP_ADDR/readyz)")
	return cmd
}
