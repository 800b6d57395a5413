use super::*;

#[test]
fn nonzero_runs_and_their_hashes() {
    let mut b = vec![0u8; 5 * BLOCK as usize];
    b[10] = 1; // block 0
    b[BLOCK as usize + 1] = 2; // block 1
    b[4 * BLOCK as usize] = 3; // block 4
    let r = nonzero_ranges(&b, 100);
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].first, r[0].last), (100, 101));
    assert_eq!((r[1].first, r[1].last), (104, 104));
    assert_eq!(
        r[0].sha256,
        hex::encode(Sha256::digest(&b[..2 * BLOCK as usize]))
    );
    assert!(nonzero_ranges(&[0; 9000], 0).is_empty());
}

#[test]
fn kept_zero_blocks_are_mapped() {
    let mut b = vec![0u8; 6 * BLOCK as usize];
    b[5 * BLOCK as usize] = 9;
    // Bytes 100..200 touch block 0; 3 * BLOCK - 1 .. 3 * BLOCK + 1 touches 2 and 3.
    let keep = Keep::new(vec![(3 * BLOCK - 1, 3 * BLOCK + 1), (100, 200), (150, 160)]);
    assert_eq!(
        keep.intervals(),
        [(100, 200), (3 * BLOCK - 1, 3 * BLOCK + 1)]
    );
    let spans: Vec<_> = mapped_ranges(&b, 10, &keep)
        .iter()
        .map(|r| (r.first, r.last))
        .collect();
    assert_eq!(spans, [(10, 10), (12, 13), (15, 15)]);
    assert!(!keep.touches(200, BLOCK) && keep.touches(0, 101));

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let f = create_private(&p).unwrap();
    f.set_len(8 * BLOCK).unwrap();
    f.write_all_at(&[1], 7 * BLOCK).unwrap();
    let r = file_ranges_keeping(&p, &Keep::new(vec![(BLOCK, 3 * BLOCK)])).unwrap();
    let spans: Vec<_> = r.iter().map(|r| (r.first, r.last)).collect();
    assert_eq!(spans, [(1, 2), (7, 7)]);
    assert_eq!(
        r[0].sha256,
        hex::encode(Sha256::digest(vec![0u8; 2 * BLOCK as usize]))
    );
}

#[test]
fn sparse_file_ranges_skip_holes_and_zero_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let f = create_private(&p).unwrap();
    f.set_len(64 << 20).unwrap();
    f.write_all_at(&[1; 5000], 0).unwrap();
    f.write_all_at(&[0; 8192], 1 << 20).unwrap(); // data, but zeros
    f.write_all_at(&[2; 10], (40 << 20) + 4096).unwrap();
    let r = file_ranges(&p).unwrap();
    let spans: Vec<_> = r.iter().map(|r| (r.first, r.last)).collect();
    assert_eq!(
        spans,
        [(0, 1), ((40 << 20) / BLOCK + 1, (40 << 20) / BLOCK + 1)]
    );
}

#[test]
fn stale_partials_of_dead_processes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join(".pve1.img.partial-4000000000");
    let live = dir
        .path()
        .join(format!(".pve2.img.partial-{}", std::process::id()));
    let other = dir.path().join("notes.partial-1");
    for p in [&dead, &live, &other] {
        std::fs::write(p, b"x").unwrap();
    }
    Staged::clean_stale(dir.path());
    assert!(!dead.exists() && live.exists() && other.exists());
}

/// Every file in a folder by name with its bytes (folders as `<dir>`).
fn folder(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = if e.file_type().unwrap().is_dir() {
                b"<dir>".to_vec()
            } else {
                std::fs::read(e.path()).unwrap()
            };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

fn stage_set(dir: &Path, tag: &str) -> Staged {
    let mut s = Staged::new(dir);
    for name in [
        "a.img",
        "a.img.bmap",
        "b.img",
        "manifest.json",
        "SHA256SUMS",
    ] {
        let (mut f, _) = s.create(name, 0o600).unwrap();
        f.write_all(format!("{tag} {name}").as_bytes()).unwrap();
    }
    s
}

#[test]
fn planted_temporary_names_are_never_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    let planted = dir.path().join(format!(".a.img.partial-{pid}-0"));
    std::fs::write(&planted, b"someone else's").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
    let target = elsewhere.path().join("victim");
    std::os::unix::fs::symlink(&target, dir.path().join(format!(".a.img.partial-{pid}-1")))
        .unwrap();
    let mut s = Staged::new(dir.path());
    let (mut f, tmp) = s.create("a.img", 0o600).unwrap();
    f.write_all(b"ours").unwrap();
    assert_eq!(tmp, dir.path().join(format!(".a.img.partial-{pid}-2")));
    assert_eq!(std::fs::read(&planted).unwrap(), b"someone else's");
    assert!(!target.exists(), "followed a planted link");
    s.commit().unwrap();
    let fin = dir.path().join("a.img");
    let m = std::fs::metadata(&fin).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&m),
        nix::unistd::getuid().as_raw()
    );
    assert_eq!(std::fs::read(&fin).unwrap(), b"ours");
}

#[test]
fn a_folder_in_the_way_fails_before_anything_is_replaced() {
    for blocker in ["b.img", "SHA256SUMS", "a.img"] {
        let dir = tempfile::tempdir().unwrap();
        stage_set(dir.path(), "old").commit().unwrap();
        std::fs::remove_file(dir.path().join(blocker)).unwrap();
        std::fs::create_dir_all(dir.path().join(blocker).join("x")).unwrap();
        let before = folder(dir.path());
        let err = stage_set(dir.path(), "new").commit().unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2, "{err:#}");
        assert!(format!("{err:#}").contains(blocker), "{err:#}");
        assert_eq!(folder(dir.path()), before, "{blocker}: the folder changed");
    }
}

#[test]
fn a_failed_rename_rolls_the_whole_commit_back() {
    // The last non-seal rename fails (its temporary name is now a folder, which
    // cannot replace a file): a.img was already replaced and the seals removed.
    let dir = tempfile::tempdir().unwrap();
    stage_set(dir.path(), "old").commit().unwrap();
    let before = folder(dir.path());
    let s = stage_set(dir.path(), "new");
    let tmp = s
        .files
        .iter()
        .find(|f| f.name == "b.img")
        .unwrap()
        .tmp
        .clone();
    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    assert!(s.commit().is_err());
    std::fs::remove_dir(&tmp).unwrap();
    assert_eq!(folder(dir.path()), before);
}

#[test]
fn a_commit_killed_at_any_step_is_rolled_back_by_the_next_build() {
    for had_old in [true, false] {
        for k in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            if had_old {
                stage_set(dir.path(), "old").commit().unwrap();
            }
            let before = folder(dir.path());
            let _ = stage_set(dir.path(), "new").commit_steps(k);
            // Right after the kill: a present SHA256SUMS always belongs to the
            // files beside it.
            let now = folder(dir.path());
            if let Some(sums) = now.get("SHA256SUMS") {
                let tag = String::from_utf8_lossy(sums)
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string();
                for n in ["a.img", "a.img.bmap", "b.img", "manifest.json"] {
                    let v = String::from_utf8_lossy(&now[n]).into_owned();
                    assert!(v.starts_with(&tag), "step {k}: {n} is {v}, sums {tag}");
                }
            }
            Staged::clean_stale_with(dir.path(), |_| false);
            assert_eq!(
                folder(dir.path()),
                before,
                "killed after {k} renames, old set {had_old}"
            );
        }
    }
}

#[test]
fn staged_files_vanish_without_commit() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Staged::new(dir.path());
        s.create("a.img", 0o600).unwrap();
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let mut s = Staged::new(dir.path());
    s.create("a.img", 0o600).unwrap();
    s.commit().unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["a.img"]);
}
