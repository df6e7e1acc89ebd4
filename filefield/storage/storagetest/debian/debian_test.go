package debian

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnsureInstalledDoesNothing(t *testing.T) {
	calls := 0
	p := Package{Name: "mediaclean-test-package", Installed: func() bool { calls++; return true }}
	require.NoError(t, Ensure("test", p, p))
	assert.Equal(t, 2, calls, "asked once each, and nothing installed")
}

func TestInstallCommand(t *testing.T) {
	cmd := InstallCommand(Package{Name: "postgresql"}, Package{Name: "mariadb-server"})
	assert.True(t, strings.HasSuffix(cmd, "apt-get install -y --no-install-recommends postgresql mariadb-server"), cmd)
	assert.Equal(t, os.Geteuid() != 0, strings.HasPrefix(cmd, "sudo "), cmd)
}

func TestNeedsUpdate(t *testing.T) {
	assert.True(t, needsUpdate([]byte("E: Unable to locate package chromium")))
	assert.True(t, needsUpdate([]byte("E: Package 'chromium' has no installation candidate")))
	assert.False(t, needsUpdate([]byte("E: Could not get lock /var/lib/dpkg/lock-frontend")))
}

func TestWithLockRunsFn(t *testing.T) {
	ran := false
	require.NoError(t, WithLock(func() error { ran = true; return nil }))
	assert.True(t, ran)
}
