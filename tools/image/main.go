// Command oci-image assembles a container image from a root filesystem directory without a
// container daemon: one layer, written as an OCI image layout (for skopeo, crane, podman,
// containerd) and as a tarball that `docker load` and `podman load` accept.
//
// The layer is reproducible: entries in name order, every time set to -epoch, owners 0:0
// except the paths given with -chown, no host user or group names.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// repeated collects a flag given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

type owner struct{ uid, gid int }

func main() {
	var (
		rootfs     = flag.String("rootfs", "", "directory holding the image's root filesystem")
		layoutDir  = flag.String("layout", "", "write an OCI image layout into this directory")
		tarPath    = flag.String("tarball", "", "write a `docker load` tarball to this file")
		tag        = flag.String("tag", "", "the image's name:tag")
		arch       = flag.String("arch", "amd64", "the image's CPU architecture")
		epoch      = flag.Int64("epoch", 0, "seconds since 1970 for every file and the creation time")
		user       = flag.String("user", "", "the user the image runs as (UID:GID)")
		entrypoint = flag.String("entrypoint", "", "the entrypoint, one argument")
		workdir    = flag.String("workdir", "/", "the working directory")
	)
	var cmd, env, labels, ports, chown repeated
	flag.Var(&cmd, "cmd", "an argument of the default command (repeat)")
	flag.Var(&env, "env", "KEY=VALUE in the environment (repeat)")
	flag.Var(&labels, "label", "KEY=VALUE label (repeat)")
	flag.Var(&ports, "expose", "an exposed port, e.g. 8080/tcp (repeat)")
	flag.Var(&chown, "chown", "PATH=UID:GID, a path in the root filesystem not owned by root (repeat)")
	flag.Parse()
	if *rootfs == "" || *tag == "" || (*layoutDir == "" && *tarPath == "") {
		fmt.Fprintln(os.Stderr, "usage: oci-image -rootfs DIR -tag NAME:TAG [-layout DIR] [-tarball FILE] [image settings]")
		os.Exit(2)
	}
	if err := run(*rootfs, *layoutDir, *tarPath, *tag, *arch, time.Unix(*epoch, 0).UTC(), v1.Config{
		User:         *user,
		Entrypoint:   []string{*entrypoint},
		Cmd:          cmd,
		Env:          env,
		WorkingDir:   *workdir,
		Labels:       pairs(labels),
		ExposedPorts: set(ports),
	}, chown); err != nil {
		fmt.Fprintln(os.Stderr, "oci-image:", err)
		os.Exit(1)
	}
}

func run(rootfs, layoutDir, tarPath, tag, arch string, created time.Time, config v1.Config, chown []string) error {
	owners, err := parseOwners(chown)
	if err != nil {
		return err
	}
	layerTar, err := tarDirectory(rootfs, created, owners)
	if err != nil {
		return fmt.Errorf("cannot pack %s: %w", rootfs, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "oci-image -rootfs " + filepath.Base(rootfs)},
	})
	if err != nil {
		return err
	}
	configFile, err := img.ConfigFile()
	if err != nil {
		return err
	}
	configFile = configFile.DeepCopy()
	configFile.Architecture = arch
	configFile.OS = "linux"
	configFile.Created = v1.Time{Time: created}
	configFile.Config = config
	img, err = mutate.ConfigFile(img, configFile)
	if err != nil {
		return err
	}

	if layoutDir != "" {
		if err := os.RemoveAll(layoutDir); err != nil {
			return err
		}
		path, err := layout.Write(layoutDir, empty.Index)
		if err != nil {
			return err
		}
		if err := path.AppendImage(img, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": tag,
		})); err != nil {
			return fmt.Errorf("cannot write the OCI layout: %w", err)
		}
	}
	if tarPath != "" {
		ref, err := name.NewTag(tag)
		if err != nil {
			return err
		}
		if err := tarball.WriteToFile(tarPath, ref, img); err != nil {
			return fmt.Errorf("cannot write the tarball: %w", err)
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}

// tarDirectory packs dir with paths relative to it, in name order.
func tarDirectory(dir string, mtime time.Time, owners map[string]owner) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)

	var out bytes.Buffer
	writer := tar.NewWriter(&out)
	for _, path := range paths {
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return nil, err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return nil, err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return nil, err
			}
		}
		header, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return nil, err
		}
		header.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			header.Name += "/"
		}
		who := owners[header.Name]
		header.Uid, header.Gid = who.uid, who.gid
		header.Uname, header.Gname = "", ""
		header.ModTime, header.AccessTime, header.ChangeTime = mtime, time.Time{}, time.Time{}
		header.Format = tar.FormatPAX
		header.PAXRecords = nil
		if err := writer.WriteHeader(header); err != nil {
			return nil, err
		}
		if info.Mode().IsRegular() {
			file, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(writer, file)
			file.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := writer.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// parseOwners reads PATH=UID:GID pairs; directory paths are keyed with a trailing slash, as in
// the tar headers.
func parseOwners(specs []string) (map[string]owner, error) {
	owners := map[string]owner{}
	for _, spec := range specs {
		path, ids, ok := strings.Cut(spec, "=")
		uid, gid, ok2 := strings.Cut(ids, ":")
		if !ok || !ok2 {
			return nil, fmt.Errorf("-chown %q: want PATH=UID:GID", spec)
		}
		u, err := strconv.Atoi(uid)
		if err != nil {
			return nil, fmt.Errorf("-chown %q: %w", spec, err)
		}
		g, err := strconv.Atoi(gid)
		if err != nil {
			return nil, fmt.Errorf("-chown %q: %w", spec, err)
		}
		owners[strings.TrimPrefix(path, "/")] = owner{u, g}
	}
	return owners, nil
}

func pairs(list []string) map[string]string {
	out := map[string]string{}
	for _, item := range list {
		key, value, _ := strings.Cut(item, "=")
		out[key] = value
	}
	return out
}

func set(list []string) map[string]struct{} {
	out := map[string]struct{}{}
	for _, item := range list {
		out[item] = struct{}{}
	}
	return out
}
