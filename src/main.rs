fn main() {
    println!("xenraid: under construction");
}
