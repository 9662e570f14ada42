"""Teacher id and temperature: Fine-tune-CoT and diverse reasoning (D=8) from each teacher's
cache (`<teacher_cache_dir>/<teacher>/`), and diverse reasoning from samples at other
temperatures (cache methods zs_cot_t<100 x T>, rt_jax.teacher.generate.method_name). Set
`teachers` to the teacher ids your cache holds.

  python -m launch.sweep --sweep=sweeps/teachers --sweep.root=gs://BUCKET/sweeps/teachers \\
      --sweep.overrides="{'teacher_cache_dir': 'gs://BUCKET/teacher_cache'}"
"""

from rt_jax.configs.sweeps.ablations import base

TEACHERS = ("text-davinci-002", "llama-3.1-70b")


def get_config():
    return base(
        "teachers",
        grids=[
            {"axes": {"teacher": TEACHERS}},
            {
                "methods": ("ft_cot_t70_{D}aug",),
                "axes": {"teacher_method": ("zs_cot_t30", "zs_cot_t70", "zs_cot_t100")},
            },
        ],
    )
