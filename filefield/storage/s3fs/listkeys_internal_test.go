package s3fs

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Keys are decoded only when the server says it encoded them, and then as
// the AWS SDKs decode them: "+" is a space, "%2B" a plus sign.
func TestListedKeyDecodesOnlyWhatTheServerEncoded(t *testing.T) {
	for _, tc := range []struct {
		enc     types.EncodingType
		in, out string
		bad     bool
	}{
		{"", "a+b%2Bc.jpg", "a+b%2Bc.jpg", false},
		{types.EncodingTypeUrl, "a+b%2Bc.jpg", "a b+c.jpg", false},
		{types.EncodingTypeUrl, "pics/bell%07.jpg", "pics/bell\a.jpg", false},
		{types.EncodingTypeUrl, "caf%C3%A9/%25.jpg", "café/%.jpg", false},
		{types.EncodingTypeUrl, "bad%zz.jpg", "", true},
	} {
		in := tc.in
		got, err := listedKey(tc.enc, &in)
		if (err != nil) != tc.bad || got != tc.out {
			t.Errorf("listedKey(%q, %q) = %q, %v; want %q (error %v)", tc.enc, tc.in, got, err, tc.out, tc.bad)
		}
	}
}
