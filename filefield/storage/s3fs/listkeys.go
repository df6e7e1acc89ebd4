package s3fs

import (
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Listings ask for URL-encoded keys (encoding-type=url). XML 1.0 cannot
// carry most control characters, and servers that do not encode replace
// them (versitygw lists "a\a.jpg" as "a\uFFFD.jpg"): a listing would
// name a key that does not exist, and two keys could list as one.
// A server that encodes says so in the response's EncodingType, and only
// then are keys decoded, as the AWS SDKs do: "+" is a space and "%2B" a
// plus sign. A key that does not decode fails the listing.

// listEncoding is the EncodingType every ListObjectsV2 request asks for.
const listEncoding = types.EncodingTypeUrl

// listedKey returns a key or prefix from a ListObjectsV2 page whose
// EncodingType is enc, decoded if the server encoded it.
func listedKey(enc types.EncodingType, s *string) (string, error) {
	k := aws.ToString(s)
	if enc != types.EncodingTypeUrl {
		return k, nil
	}
	d, err := url.QueryUnescape(k)
	if err != nil {
		return "", fmt.Errorf("listed key %q is not URL-encoded: %w", k, err)
	}
	return d, nil
}
