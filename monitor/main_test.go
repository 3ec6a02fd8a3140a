package monitor

import (
	"os"
	"testing"

	"github.com/plyr-fm/plyrtasks/internal/redistest"
)

// srv is the package's throwaway redis-server; tests isolate by database.
var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.MustMain(m, &srv)) }
