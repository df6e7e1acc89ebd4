package s3fs

import "github.com/aws/aws-sdk-go-v2/service/s3"

// Bucket returns the bucket f is on.
func (f *Fs) Bucket() string { return f.bucket }

// Prefix returns f's key prefix, normalised: "" for the bucket's root,
// else ending in "/".
func (f *Fs) Prefix() string { return f.prefix }

// Client returns the S3 client f sends its requests with.
func (f *Fs) Client() *s3.Client { return f.client }
