//! Macros the layer crates share. Not part of the public API.

/// Writes `get_ref`, `get_mut` and `into_inner` for a service `Foo<S>` whose wrapped service
/// is the field `inner`, with the same docs everywhere.
#[doc(hidden)]
#[macro_export]
macro_rules! __inner_service_accessors {
    () => {
        /// A reference to the inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// A mutable reference to the inner service.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// The inner service, consuming this one.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}
