fn main() {
    eprintln!("hcikit-firstboot: not built yet");
    std::process::exit(1);
}
