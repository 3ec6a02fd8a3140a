package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/store"
)

// newSessionCmd is `plyrtasks session add|list|rm`: password sessions for
// service accounts, local development and tests.
func newSessionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "session",
		Short: "Manage stored PDS sessions (add with a password, list, remove)",
		Long: `session manages the PDS sessions ATProto tasks act through. Tasks name a
session by ID (session_id), never by token; the tokens are stored encrypted
with SESSION_ENCRYPTION_KEY in the store (DATABASE_URL, or SQLite under
DATA_DIR).

plyr.fm stores its users' OAuth sessions itself; this command adds password
(or app password) sessions, for service accounts, local development and
tests.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newSessionAddCmd(), newSessionListCmd(), newSessionRmCmd())
	return cmd
}

func newSessionAddCmd() *cobra.Command {
	var pdsURL, identifier string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "add --pds URL --identifier HANDLE --password-stdin",
		Short: "Log in with a password or app password and store the session",
		Long: `add logs in to the PDS at --pds as --identifier (a handle, DID or email) with
the password read from the first line of stdin
(com.atproto.server.createSession), stores the session and prints its ID on
the last line of stdout:

  printf '%s\n' "$APP_PASSWORD" | plyrtasks session add --pds https://bsky.social --identifier me.bsky.social --password-stdin

The password is never taken as an argument (it would show in the process
list and shell history) and is not stored: the session keeps only its
tokens, refreshed as they expire. Use an app password where the PDS offers
them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !passwordStdin {
				return errors.New("--password-stdin is required: pipe the password on stdin (it is never taken as an argument)")
			}
			password, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			cfg, st, err := openSessionStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			// Check before logging in: a session made on the PDS and then
			// not stored would be left dangling there.
			if len(cfg.SessionEncryptionKey) == 0 {
				return errors.New("SESSION_ENCRYPTION_KEY is not set: sessions are stored encrypted, so set it first (openssl rand -base64 32)")
			}
			c, err := pds.New(pds.Options{Store: st, Timeout: cfg.ATProto.PDSTimeout})
			if err != nil {
				return err
			}
			s, err := c.Login(cmd.Context(), pdsURL, identifier, password)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "stored session for %s (%s) on %s\n", s.Handle, s.DID, s.PDSURL)
			fmt.Fprintln(out, s.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&pdsURL, "pds", "", "PDS base URL, e.g. https://bsky.social (required)")
	cmd.Flags().StringVar(&identifier, "identifier", "", "handle, DID or email to log in as (required)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin (required)")
	_ = cmd.MarkFlagRequired("pds")
	_ = cmd.MarkFlagRequired("identifier")
	return cmd
}

func newSessionListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List stored sessions (no tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, st, err := openSessionStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			sessions, err := st.ListSessions(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDID\tHANDLE\tKIND\tPDS\tACCESS EXPIRES")
			for _, s := range sessions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.DID, s.Handle, s.Kind, s.PDSURL, expiry(s.ExpiresAt))
			}
			return tw.Flush()
		},
	}
}

func newSessionRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID",
		Short: "Remove a stored session (its tasks then fail as \"session expired\")",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, st, err := openSessionStore(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.DeleteSession(cmd.Context(), args[0]); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no session %q", args[0])
			} else if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed session %s\n", args[0])
			return nil
		},
	}
}

// openSessionStore loads the configuration and opens and migrates the store.
func openSessionStore(cmd *cobra.Command) (*config.Config, store.Store, error) {
	cfg, log, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(cmd.Context(), store.Options{
		DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir,
		EncryptionKey: cfg.SessionEncryptionKey, Logger: log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	if err := st.Migrate(cmd.Context()); err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("store: migrate: %w", err)
	}
	return cfg, st, nil
}

// readPassword reads the first line of r.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin (--password-stdin reads its first line)")
	}
	return line, nil
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}
