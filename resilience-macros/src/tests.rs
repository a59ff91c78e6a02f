//! Expansion snapshots, one per supported shape (borsh-derive's pattern: insta + prettyplease
//! on stable). Review changes with `cargo insta review`, or accept them all with
//! `INSTA_UPDATE=always cargo test -p resilience-macros`.

use proc_macro2::TokenStream;
use quote::quote;

fn pretty(tokens: TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => panic!("the expansion is not a valid file: {e}\n{tokens}"),
    }
}

macro_rules! snapshot {
    ($name:literal, $expanded:expr) => {
        insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!($name, pretty($expanded));
        });
    };
}

fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    crate::expand::retry(args, item)
}

fn derive(item: TokenStream) -> TokenStream {
    crate::derive::classify(item)
}

#[test]
fn sync_fn() {
    snapshot!(
        "retry_sync_fn",
        retry(
            quote!(
                component = "ChEMBL",
                operation = "fetch",
                max_attempts = 5,
                initial_delay = "200ms",
                max_delay = "10s",
                backoff_factor = 2.0,
                jitter_factor = 0.2
            ),
            quote! {
                /// Fetches one molecule.
                #[inline]
                pub fn fetch(client: &Client, id: &str) -> Result<Molecule, FetchError> {
                    client.get(id)
                }
            }
        )
    );
}

#[test]
fn async_fn() {
    snapshot!(
        "retry_async_fn",
        retry(
            quote!(max_attempts = 3, jitter = "decorrelated", max_elapsed = 30),
            quote! {
                pub(crate) async fn fetch(client: &Client, id: &str) -> std::io::Result<Vec<u8>> {
                    let body = client.get(id).await?;
                    Ok(body)
                }
            }
        )
    );
}

#[test]
fn async_fn_with_timeout() {
    snapshot!(
        "retry_async_timeout",
        retry(
            quote!(component = "db", timeout = "2s"),
            quote! {
                async fn query(pool: &Pool) -> Result<Row, DbError> {
                    pool.query_one().await
                }
            }
        )
    );
}

#[test]
fn ref_self_method() {
    snapshot!(
        "retry_ref_self",
        retry(
            quote!(component = "svc", operation = "get"),
            quote! {
                fn get(&self, key: &str) -> Result<u8, MyError> {
                    self.inner.get(key)
                }
            }
        )
    );
}

#[test]
fn mut_self_async_method() {
    snapshot!(
        "retry_mut_self_async",
        retry(
            quote!(
                component = "svc",
                operation = "put",
                manager = &self.manager
            ),
            quote! {
                async fn put(&mut self, v: u8) -> Result<u8, MyError> {
                    self.values.push(v);
                    Ok(v)
                }
            }
        )
    );
}

#[test]
fn generics_and_where_clause() {
    snapshot!(
        "retry_generics_where",
        retry(
            quote!(max_attempts = 2),
            quote! {
                pub unsafe fn decode<'a, T, R: Read>(reader: &'a mut R) -> Result<T, io::Error>
                where
                    T: DeserializeOwned + 'a,
                {
                    serde_json::from_reader(reader).map_err(io::Error::from)
                }
            }
        )
    );
}

#[test]
fn impl_trait_argument_and_return() {
    snapshot!(
        "retry_impl_trait",
        retry(
            quote!(),
            quote! {
                fn render(value: impl Display) -> Result<impl Display + Send, fmt::Error> {
                    Ok(format!("<{value}>"))
                }
            }
        )
    );
}

#[test]
fn breaker_off() {
    snapshot!(
        "retry_breaker_off",
        retry(
            quote!(max_attempts = 2, circuit_breaker = false),
            quote! {
                async fn fetch(id: &str) -> Result<usize, std::io::Error> {
                    Ok(id.len())
                }
            }
        )
    );
}

#[test]
fn nested_breaker_config() {
    snapshot!(
        "retry_breaker_config",
        retry(
            quote!(
                component = "c",
                operation = "o",
                circuit_breaker(
                    failure_threshold = 3,
                    reset_timeout = 60.0,
                    half_open_max_calls = 2,
                    success_threshold = 2,
                    open_timeout_increment_factor = 2,
                    max_open_timeout = "5m"
                )
            ),
            quote! {
                fn call() -> Result<(), MyError> {
                    Ok(())
                }
            }
        )
    );
}

#[test]
fn manager_override() {
    snapshot!(
        "retry_manager_override",
        retry(
            quote!(manager = Arc::clone(&MANAGER)),
            quote! {
                fn call() -> Result<(), MyError> {
                    Ok(())
                }
            }
        )
    );
}

#[test]
fn crate_override() {
    snapshot!(
        "retry_crate_override",
        retry(
            quote!(crate = "my_app::deps::resilience_core", max_attempts = 4),
            quote! {
                fn call() -> Result<(), MyError> {
                    Ok(())
                }
            }
        )
    );
}

#[test]
fn errors_keep_the_function() {
    snapshot!(
        "retry_errors_keep_the_function",
        retry(
            quote!(max_attempts = 0, max_attemps = 3),
            quote! {
                fn call() -> Result<(), MyError> {
                    Ok(())
                }
            }
        )
    );
}

#[test]
fn derive_enum() {
    snapshot!(
        "derive_enum",
        derive(quote! {
            #[classify(default = Database)]
            enum DbError {
                #[classify(Network)]
                Reset,
                #[classify(source)]
                Io(std::io::Error),
                #[classify(RateLimit, retry_after = wait)]
                Busy { wait: Option<Duration>, code: u16 },
                Locked { table: String },
            }
        })
    );
}

#[test]
fn derive_generic_enum() {
    snapshot!(
        "derive_generic_enum",
        derive(quote! {
            enum Wrapper<E> where E: Debug {
                #[classify(source)]
                Inner { error: E },
                #[classify(NotFound)]
                Missing,
            }
        })
    );
}

#[test]
fn derive_struct() {
    snapshot!(
        "derive_struct",
        derive(quote! {
            #[classify(Timeout, retry_after = 0)]
            struct SlowDown(Duration, String);
        })
    );
}

#[test]
fn derive_struct_source() {
    snapshot!(
        "derive_struct_source",
        derive(quote! {
            #[classify(source, crate = "my_app::resilience_core")]
            struct Context { inner: io::Error }
        })
    );
}

#[test]
fn round_two_settings() {
    snapshot!(
        "retry_round_two_settings",
        retry(
            quote!(
                classify_ok = judge_status,
                budget(percent = 0.2, min_per_sec = 10, ttl = "10s"),
                circuit_breaker(
                    failure_rate = 0.5,
                    window_calls = 100,
                    minimum_calls = 20,
                    slow_call = "2s",
                    slow_call_rate = 0.8,
                    max_half_open_wait = "30s"
                )
            ),
            quote! {
                fn status(client: &Client) -> Result<Response, FetchError> {
                    client.get()
                }
            }
        )
    );
}

#[test]
fn time_window_and_no_budget() {
    snapshot!(
        "retry_time_window_no_budget",
        retry(
            quote!(
                budget = false,
                circuit_breaker(failure_rate = 0.5, window = "60s", minimum_calls = 10)
            ),
            quote! {
                async fn ping(client: &Client) -> Result<(), FetchError> {
                    client.ping().await
                }
            }
        )
    );
}
