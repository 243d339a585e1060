// `sqlx::migrate!` embeds the migrations at compile time but cannot tell cargo about a new
// file in the directory: without this, a build after adding a migration would not carry it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
