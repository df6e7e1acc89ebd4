package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest/debian"
)

// rclone finds the rclone binary, installing Debian's package when it can
// (as root with apt-get), and otherwise fails with the command that
// installs it.
func rclone() (string, error) {
	pkg := debian.Package{Name: "rclone", Installed: func() bool { _, err := exec.LookPath("rclone"); return err == nil }}
	if err := debian.Ensure("bench", pkg); err != nil {
		return "", err
	}
	return exec.LookPath("rclone")
}

// rcloneDelete times `rclone delete --min-age 7d target` with a config of
// its own: env (RCLONE_CONFIG_*) and no user config file.
func rcloneDelete(bin, target string, env ...string) (time.Duration, error) {
	cmd := exec.Command(bin, "delete", "--min-age", "7d", "--config", os.DevNull, target)
	cmd.Env = append(os.Environ(), env...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		return 0, fmt.Errorf("rclone delete %s: %w\n%s", target, err, errOut.String())
	}
	return time.Since(start), nil
}

// T9, local: sweep vs `rclone delete --min-age 7d DIR` (rclone's local
// backend), each on a fresh tree of -files files, half older than 7 days.
func (b *bench) t9Local() (Result, error) {
	bin, err := rclone()
	if err != nil {
		return Result{}, err
	}
	return b.sweepAgainst("rclone delete --min-age 7d (local)", 0.6, func(dir string) (time.Duration, error) {
		return rcloneDelete(bin, dir)
	})
}

// T9, S3: a sweep through s3fs vs `rclone delete --min-age 7d` on the same
// versitygw, each on a fresh bucket of objects, every other one older
// than 7 days. rclone runs as an operator would type it: it reads each
// object's modification time from its metadata, as it does by default.
func (b *bench) t9S3(objects int) (Result, error) {
	bin, err := rclone()
	if err != nil {
		return Result{}, err
	}
	srv, err := s3test.Start()
	if err != nil {
		return Result{}, err
	}
	defer srv.Stop()
	ctx := context.Background()
	client := srv.Client(nil)
	fill := func(bucket string) error { return fillBucket(ctx, srv, client, bucket, objects, 2) }
	left := func(bucket string) ([]string, error) {
		var keys []string
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, o := range page.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
		return keys, nil
	}
	access, secret := srv.Keys()
	env := []string{
		"RCLONE_CONFIG_BENCH_TYPE=s3", "RCLONE_CONFIG_BENCH_PROVIDER=Other", "RCLONE_CONFIG_BENCH_ENDPOINT=" + srv.Endpoint,
		"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=" + access, "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=" + secret,
		"RCLONE_CONFIG_BENCH_REGION=us-east-1", "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true",
		// The server speaks plain HTTP; a CA bundle from the environment
		// makes rclone's SDK refuse its transport.
		"AWS_CA_BUNDLE=",
	}
	var ours, peer []time.Duration
	for i := range b.runs {
		bucket := fmt.Sprintf("t9-ours-%d", i)
		if err := fill(bucket); err != nil {
			return Result{}, err
		}
		start := time.Now()
		rep, err := sweeper(s3fs.New(client, bucket, s3fs.Options{}), false).Sweep(ctx)
		ours = append(ours, time.Since(start))
		if err != nil {
			return Result{}, err
		}
		oursLeft, err := left(bucket)
		if err != nil {
			return Result{}, err
		}

		bucket = fmt.Sprintf("t9-peer-%d", i)
		if err := fill(bucket); err != nil {
			return Result{}, err
		}
		d, err := rcloneDelete(bin, "bench:"+bucket, env...)
		if err != nil {
			return Result{}, err
		}
		peer = append(peer, d)
		peerLeft, err := left(bucket)
		if err != nil {
			return Result{}, err
		}
		if !slices.Equal(oursLeft, peerLeft) || rep.Deleted.Files != (objects+1)/2 {
			return Result{}, fmt.Errorf("different work: ours deleted %d and left %d objects, rclone left %d", rep.Deleted.Files, len(oursLeft), len(peerLeft))
		}
	}
	return Result{Ours: median(ours), Peer: median(peer), Target: 0.2, Peer_: "rclone delete --min-age 7d (S3)"}, nil
}
