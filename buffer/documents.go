package buffer

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

func (t *Tx) docs(bucket string, create bool) (*bolt.Bucket, error) {
	if bucket == "" {
		return nil, errors.New("empty bucket name")
	}
	d := t.tx.Bucket(bucketDocs)
	if create {
		return d.CreateBucketIfNotExists([]byte(bucket))
	}
	return d.Bucket([]byte(bucket)), nil
}

// Put stores a document under bucket/key (buckets are created on first use). value is copied.
func (t *Tx) Put(bucket, key string, value []byte) error {
	b, err := t.docs(bucket, true)
	if err == nil {
		err = b.Put([]byte(key), value)
	}
	if err != nil {
		return fmt.Errorf("buffer: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Get returns a copy of the document, or nil.
func (t *Tx) Get(bucket, key string) []byte {
	b, _ := t.docs(bucket, false)
	if b == nil {
		return nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

// Delete removes a document. Deleting a missing document is not an error.
func (t *Tx) Delete(bucket, key string) error {
	b, err := t.docs(bucket, false)
	if err == nil && b != nil {
		err = b.Delete([]byte(key))
	}
	if err != nil {
		return fmt.Errorf("buffer: delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// ForEach visits the documents of a bucket in key order. value is only valid during the call
// (copy it to keep it); fn must not modify the bucket. An error from fn stops the walk and is
// returned as is.
func (t *Tx) ForEach(bucket string, fn func(key string, value []byte) error) error {
	b, err := t.docs(bucket, false)
	if err != nil {
		return fmt.Errorf("buffer: for each in %q: %w", bucket, err)
	}
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil // a nested bucket, not a document
		}
		return fn(string(k), v)
	})
}
