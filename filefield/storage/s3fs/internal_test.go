package s3fs

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every byte but the unreserved ones and "/" is percent-encoded, so a
// server decoding CopySource as a query value or as a path gets the key
// back: "+" stays a plus, "%2B" stays those three characters.
func TestEscapeKey(t *testing.T) {
	t.Parallel()
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	key := "a+b/c d/%2B/&=$,;@/" + string(all) + "/é中😀"
	esc := escapeKey(key)
	for _, c := range []byte(esc) {
		assert.Contains(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~/%", string(c))
	}
	q, err := url.QueryUnescape(esc)
	assert.NoError(t, err)
	assert.Equal(t, key, q)
	p, err := url.PathUnescape(esc)
	assert.NoError(t, err)
	assert.Equal(t, key, p)
	assert.Equal(t, "k/x%2By.png", escapeKey("k/x+y.png"))
	assert.Equal(t, "a-b_c.d~e/%25%20%26", escapeKey("a-b_c.d~e/% &"))
}

// PartSize defaults to 8 MiB and is never below S3's 5 MiB minimum.
func TestPartSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]int{0: DefaultPartSize, 1: MinPartSize, MinPartSize - 1: MinPartSize, MinPartSize: MinPartSize, 64 << 20: 64 << 20} {
		assert.Equal(t, want, New(nil, "b", Options{PartSize: in}).partSize, "PartSize %d", in)
	}
}
