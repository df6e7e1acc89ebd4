package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// T5: on versitygw, a sweep through s3fs (ListObjectsV2 pages, then
// DeleteObjects batches) vs a bare SDK client making the same list and
// delete calls. Objects are few (-s3-objects) since the server keeps each
// as a file and upload time dominates setup.
func (b *bench) t5S3(objects int) (Result, error) {
	srv, err := s3test.Start()
	if err != nil {
		return Result{}, err
	}
	defer srv.Stop()
	ctx := context.Background()
	client := srv.Client(nil)
	fill := func(bucket string) error { return fillBucket(ctx, srv, client, bucket, objects, 1) }
	var ours, peer []time.Duration
	for i := range b.runs {
		bucket := fmt.Sprintf("ours-%d", i)
		if err := fill(bucket); err != nil {
			return Result{}, err
		}
		start := time.Now()
		rep, err := sweeper(s3fs.New(client, bucket, s3fs.Options{}), false).Sweep(ctx)
		ours = append(ours, time.Since(start))
		if err != nil || rep.Deleted.Files != objects {
			return Result{}, fmt.Errorf("s3 sweep deleted %d of %d: %v", rep.Deleted.Files, objects, err)
		}

		bucket = fmt.Sprintf("peer-%d", i)
		if err := fill(bucket); err != nil {
			return Result{}, err
		}
		start = time.Now()
		deleted, err := bareSweep(ctx, client, bucket)
		peer = append(peer, time.Since(start))
		if err != nil || deleted != objects {
			return Result{}, fmt.Errorf("bare client deleted %d of %d: %v", deleted, objects, err)
		}
	}
	return Result{Ours: median(ours), Peer: median(peer), Target: 1.5, Peer_: "bare SDK: ListObjectsV2 + DeleteObjects"}, nil
}

// fillBucket creates bucket with objects of 1 kB, 1000 to a folder, and
// back-dates every oldEvery-th one (from the first) by 10 days: versitygw
// keeps each object as a file, whose mtime is its LastModified.
func fillBucket(ctx context.Context, srv *s3test.Server, client *s3.Client, bucket string, objects, oldEvery int) error {
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(16)
	for i := range objects {
		g.Go(func() error {
			_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(fmt.Sprintf("d%03d/f%06d.png", i/1000, i)), Body: bytes.NewReader(make([]byte, 1024))})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	old := time.Now().Add(-10 * 24 * time.Hour)
	for i := 0; i < objects; i += oldEvery {
		p := filepath.Join(srv.Dir, bucket, fmt.Sprintf("d%03d", i/1000), fmt.Sprintf("f%06d.png", i))
		if err := os.Chtimes(p, old, old); err != nil {
			return err
		}
	}
	return nil
}

// bareSweep is what a hand-written client would do: list every page, then
// delete the old keys 1000 at a time.
func bareSweep(ctx context.Context, client *s3.Client, bucket string) (int, error) {
	cutoff := time.Now().Add(-7 * 24 * time.Hour)
	var keys []types.ObjectIdentifier
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket, MaxKeys: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		for _, o := range page.Contents {
			if aws.ToTime(o.LastModified).Before(cutoff) {
				keys = append(keys, types.ObjectIdentifier{Key: o.Key})
			}
		}
	}
	deleted := 0
	for i := 0; i < len(keys); i += 1000 {
		chunk := keys[i:min(i+1000, len(keys))]
		out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: chunk, Quiet: aws.Bool(true)}})
		if err != nil {
			return deleted, err
		}
		deleted += len(chunk) - len(out.Errors)
	}
	return deleted, nil
}
