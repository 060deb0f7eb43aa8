! Shortwave radiation of the surface: albedos of soil, snow and canopy, absorption by vegetation and ground,
! and the sunlit/shaded big leaves of the two-big-leaf model.
!
! - Split of the incoming shortwave (CLM's offline atmospheric rule, CLM3 technical note, Oleson et al. 2004,
!   also used by CoLM's forcing reader): half visible, half near infrared; the direct fraction of each half
!   is a cubic fit in the half-band flux S_b = 0.5 S (W m-2), clipped to [0.01, 0.99]:
!     vis: 0.17639 + 0.00380 S_b - 9.0039e-6 S_b^2 + 8.1351e-9 S_b^3
!     nir: 0.29548 + 0.00504 S_b - 1.4957e-5 S_b^2 + 1.4881e-8 S_b^3
! - Soil albedo (CLM): alb = alb_sat + min(alb_dry - alb_sat, 0.01 max(11 - 40 theta_1, 0)), same direct/diffuse.
! - Snow albedo: BATS (Dickinson et al. 1993): diffuse vis 0.95 (1 - 0.2 F_age), nir 0.65 (1 - 0.5 F_age),
!   F_age = tau / (1 + tau) from the non-dimensional snow age tau; direct = diffuse + 0.4 f(mu) (1 - diffuse),
!   f(mu) = max(0, (1 + 1/b)/(1 + 2 b mu) - 1/b), b = 2. Ground albedo = (1 - f_sno) soil + f_sno snow.
! - Canopy: two-stream approximation (Dickinson 1983; Sellers 1985) in the form of the CLM technical notes
!   (Oleson et al. 2013, ch. 3): Ross-Goudriaan G(mu) = phi1 + phi2 mu, K = G/mu, diffuse mu_bar, upscatter
!   omega*beta for diffuse and omega*beta0 (single-scattering albedo a_s) for direct light. The two
!   coupled equations are solved in closed form here with two decaying exponential modes (no overflow at large
!   LAI) and the ground albedos as lower boundary condition. Leaf and stem optics are weighted by LAI and SAI.
! - Snow on the canopy (CLM4.5 technical note, Oleson et al. 2013, sect. 3.1; CoLM202X's vegetation-snow option):
!   when the canopy is frozen, the fraction f_s of the phytoelements covered by intercepted snow scatters like
!   snow: omega = (1 - f_s) omega_veg + f_s omega_sno, omega beta = (1 - f_s) omega_veg beta_veg
!   + f_s omega_sno beta_sno, the same for omega beta0; omega_sno = 0.8 (vis), 0.4 (nir), beta_sno = beta0_sno
!   = 0.5. The column step passes f_s = wet fraction of the canopy water when the leaf temperature is <= T_frz.
! - Sunlit/shaded big leaves (Dai et al. 2004, J. Climate 17, 2281): sunlit fraction of phytoelements at
!   depth x is exp(-K x); sunlit LAI = LAI (1 - exp(-K (L+S)))/(K (L+S)). Absorption per unit depth is
!   (1 - omega) [ K exp(-K x) (direct beam) + (I_up + I_down)/mu_bar ]; the sunlit leaves receive the direct
!   part and exp(-K x) of the diffuse part. These integrals are analytic for the two-stream solution.
! - Shortwave conservation is exact: absorbed(veg) + absorbed(ground) + reflected = incoming. Night (coszen
!   <= 0 or no shortwave): all fluxes and albedos zero, all leaves shaded.
module colm_radiation
  use colm_const, only: r8
  use colm_layout
  implicit none
  private
  public :: surface_rad_t, surface_radiation, partition_shortwave, soil_albedo, snow_albedo_bats
  public :: leaf_angle_params, twostream_band, is_vegetated, lsai_min

  real(r8), parameter :: lsai_min = 0.05_r8         ! LAI + SAI below which a column is treated as bare (m2 m-2), CLM
  real(r8), parameter :: rho_stem(2) = [0.16_r8, 0.39_r8]   ! stem reflectance vis, nir (-), CLM woody PFTs
  real(r8), parameter :: tau_stem(2) = [0.001_r8, 0.001_r8] ! stem transmittance vis, nir (-), CLM woody PFTs
  real(r8), parameter :: snow_alb_vis0 = 0.95_r8    ! BATS fresh snow diffuse albedo, visible (-)
  real(r8), parameter :: snow_alb_nir0 = 0.65_r8    ! BATS fresh snow diffuse albedo, near infrared (-)
  real(r8), parameter :: snow_age_cvis = 0.2_r8     ! BATS ageing coefficient, visible (-)
  real(r8), parameter :: snow_age_cnir = 0.5_r8     ! BATS ageing coefficient, near infrared (-)
  real(r8), parameter :: snow_zen_b = 2.0_r8        ! BATS zenith-angle parameter b (-)
  real(r8), parameter :: omega_sno(2) = [0.8_r8, 0.4_r8] ! scattering coefficient of snow on canopy elements,
                                                    ! vis, nir (-), CLM4.5 tech. note sect. 3.1
  real(r8), parameter :: beta_sno = 0.5_r8          ! diffuse and direct upscatter parameters of canopy snow (-)

  ! Results of the shortwave calculation for one column. Band index 1 = visible, 2 = near infrared;
  ! second index 1 = direct beam, 2 = diffuse.
  type :: surface_rad_t
    real(r8) :: swdown = 0.0_r8                     ! incoming shortwave (W m-2)
    real(r8) :: sw(2,2) = 0.0_r8                    ! incoming shortwave by band and direct/diffuse (W m-2)
    real(r8) :: sabv = 0.0_r8                       ! shortwave absorbed by vegetation (W m-2)
    real(r8) :: sabg = 0.0_r8                       ! shortwave absorbed by the ground (W m-2)
    real(r8) :: swref = 0.0_r8                      ! reflected shortwave (W m-2)
    real(r8) :: swnet = 0.0_r8                      ! net shortwave, sabv + sabg (W m-2)
    real(r8) :: albedo = 0.0_r8                     ! broadband surface albedo, swref / swdown (-)
    real(r8) :: alb(2,2) = 0.0_r8                   ! surface albedo by band and direct/diffuse (-)
    real(r8) :: albg(2,2) = 0.0_r8                  ! ground (soil + snow) albedo (-)
    real(r8) :: fabv(2,2) = 0.0_r8                  ! fraction absorbed by vegetation per unit incoming (-)
    real(r8) :: fabg(2,2) = 0.0_r8                  ! fraction absorbed by the ground per unit incoming (-)
    real(r8) :: fsun = 0.0_r8                       ! sunlit fraction of the canopy (-)
    real(r8) :: lai_sun = 0.0_r8                    ! sunlit leaf area index (m2 m-2)
    real(r8) :: lai_sha = 0.0_r8                    ! shaded leaf area index (m2 m-2)
    real(r8) :: apar_sun = 0.0_r8                   ! PAR absorbed by sunlit leaves, per unit sunlit leaf area (W m-2)
    real(r8) :: apar_sha = 0.0_r8                   ! PAR absorbed by shaded leaves, per unit shaded leaf area (W m-2)
    real(r8) :: fn_sun = 0.0_r8                     ! mean nitrogen (Vcmax) factor of sunlit leaves, exp(-kn x) (-)
    real(r8) :: fn_sha = 0.0_r8                     ! mean nitrogen (Vcmax) factor of shaded leaves (-)
    real(r8) :: extkb = 0.0_r8                      ! direct-beam extinction coefficient K (-)
    integer :: vegetated = 0                        ! 1 if the canopy was treated as present (-)
  end type surface_rad_t

  ! Sun- and leaf-angle dependent quantities of the two-stream solution, shared by both wavebands.
  type :: ts_geom_t
    real(r8) :: chil, phi1, phi2, mubar              ! leaf angle parameters (-)
    real(r8) :: mu, gmu, extkb                       ! cosine zenith (bounded), G(mu), K (-)
    real(r8) :: tmp, y, ly                           ! mu phi2 + G, tmp / (mu phi1), log(1 + y) for the a_s (-)
    real(r8) :: s2, ekl                              ! exp(-min(K L, 200)), exp(-K L) (-)
    real(r8) :: t3                                   ! int_0^L exp(-2 K x) dx (-)
  end type ts_geom_t

contains

  ! A column has a canopy for radiation and fluxes if its PFT is vegetated and LAI + SAI >= lsai_min.
  pure logical function is_vegetated(isveg, lai, sai)
    real(r8), intent(in) :: isveg                    ! VP_ISVEG flag (-)
    real(r8), intent(in) :: lai                      ! leaf area index (m2 m-2)
    real(r8), intent(in) :: sai                      ! stem area index (m2 m-2)
    is_vegetated = isveg > 0.5_r8 .and. lai + sai >= lsai_min
  end function is_vegetated

  ! Visible / near-infrared and direct / diffuse split of the incoming shortwave (rule in the header).
  pure subroutine partition_shortwave(swdown, sw)
    real(r8), intent(in) :: swdown                   ! incoming shortwave (W m-2)
    real(r8), intent(out) :: sw(2,2)                 ! (band, 1 direct / 2 diffuse) (W m-2)
    real(r8) :: sb                                   ! half-band flux (W m-2)
    real(r8) :: fdir                                 ! direct fraction (-)
    sb = 0.5_r8 * max(swdown, 0.0_r8)
    fdir = 0.17639_r8 + sb * (0.00380_r8 + sb * (-9.0039e-6_r8 + sb * 8.1351e-9_r8))
    fdir = min(0.99_r8, max(fdir, 0.01_r8))
    sw(1,1) = fdir * sb
    sw(1,2) = sb - sw(1,1)
    fdir = 0.29548_r8 + sb * (0.00504_r8 + sb * (-1.4957e-5_r8 + sb * 1.4881e-8_r8))
    fdir = min(0.99_r8, max(fdir, 0.01_r8))
    sw(2,1) = fdir * sb
    sw(2,2) = sb - sw(2,1)
  end subroutine partition_shortwave

  ! CLM soil albedo from the colour-class saturated/dry albedos and the top-layer water content.
  pure subroutine soil_albedo(albsat, albdry, theta1, alb)
    real(r8), intent(in) :: albsat(2)                ! saturated soil albedo vis, nir (-)
    real(r8), intent(in) :: albdry(2)                ! dry soil albedo vis, nir (-)
    real(r8), intent(in) :: theta1                   ! volumetric water (liquid + ice) of soil layer 1 (m3 m-3)
    real(r8), intent(out) :: alb(2)                  ! soil albedo vis, nir (-)
    real(r8) :: inc                                  ! wetness increment (-)
    inc = max(0.11_r8 - 0.40_r8 * theta1, 0.0_r8)
    alb = albsat + min(albdry - albsat, inc)
  end subroutine soil_albedo

  ! BATS snow albedo (Dickinson et al. 1993) for direct and diffuse light.
  pure subroutine snow_albedo_bats(coszen, snowage, alb_dir, alb_dif)
    real(r8), intent(in) :: coszen                   ! cosine of the solar zenith angle (-)
    real(r8), intent(in) :: snowage                  ! non-dimensional snow age (-)
    real(r8), intent(out) :: alb_dir(2)              ! direct-beam snow albedo vis, nir (-)
    real(r8), intent(out) :: alb_dif(2)              ! diffuse snow albedo vis, nir (-)
    real(r8) :: fage                                 ! age factor (-)
    real(r8) :: fzen                                 ! zenith factor (-)
    fage = max(snowage, 0.0_r8) / (1.0_r8 + max(snowage, 0.0_r8))
    alb_dif(1) = snow_alb_vis0 * (1.0_r8 - snow_age_cvis * fage)
    alb_dif(2) = snow_alb_nir0 * (1.0_r8 - snow_age_cnir * fage)
    fzen = (1.0_r8 + 1.0_r8 / snow_zen_b) / (1.0_r8 + 2.0_r8 * snow_zen_b * max(coszen, 0.0_r8)) &
           - 1.0_r8 / snow_zen_b
    fzen = max(fzen, 0.0_r8)
    alb_dir = alb_dif + 0.4_r8 * fzen * (1.0_r8 - alb_dif)
  end subroutine snow_albedo_bats

  ! Ross-Goudriaan leaf-angle coefficients and the average inverse diffuse optical depth mu_bar.
  ! chi_L is kept in [-0.4, 0.6] and |chi_L| >= 0.01 (CLM).
  pure subroutine leaf_angle_params(chil_in, chil, phi1, phi2, mubar)
    real(r8), intent(in) :: chil_in                  ! leaf angle distribution index (-)
    real(r8), intent(out) :: chil                    ! bounded index (-)
    real(r8), intent(out) :: phi1                    ! G(mu) = phi1 + phi2 mu (-)
    real(r8), intent(out) :: phi2                    ! (-)
    real(r8), intent(out) :: mubar                   ! average inverse diffuse optical depth per unit LAI (-)
    chil = min(max(chil_in, -0.4_r8), 0.6_r8)
    if (abs(chil) < 0.01_r8) chil = 0.01_r8
    phi1 = 0.5_r8 - 0.633_r8 * chil - 0.330_r8 * chil * chil
    phi2 = 0.877_r8 * (1.0_r8 - 2.0_r8 * phi1)
    mubar = (1.0_r8 - phi1 / phi2 * log((phi1 + phi2) / phi1)) / phi2
  end subroutine leaf_angle_params

  ! (1 - exp(-a L)) / a, the integral of exp(-a x) over [0, L]; L when a L -> 0.
  pure real(r8) function int_exp(a, el, ea)
    real(r8), intent(in) :: a                        ! decay rate (-)
    real(r8), intent(in) :: el                       ! upper limit (-)
    real(r8), intent(in), optional :: ea             ! exp(-a L) if the caller has it (-)
    if (abs(a * el) < 1.0e-6_r8) then
      int_exp = el * (1.0_r8 - 0.5_r8 * a * el)
    else if (present(ea) .and. abs(a * el) >= 1.0e-5_r8) then
      int_exp = -(ea - 1.0_r8) / a                   ! (= -expm1_(-a L) / a)
    else
      int_exp = -expm1_(-a * el) / a
    end if
  end function int_exp

  ! (exp(-a L) - exp(-b L)) / (b - a), the integral of exp(-b (L - x)) exp(-a x) over [0, L].
  pure real(r8) function int_exp2(a, b, el, ea)
    real(r8), intent(in) :: a, b                     ! decay rates (-)
    real(r8), intent(in) :: el                       ! upper limit (-)
    real(r8), intent(in) :: ea                       ! exp(-a L) (-)
    real(r8) :: y                                    ! (b - a) L (-)
    y = (b - a) * el
    if (abs(y) < 1.0e-4_r8) then
      int_exp2 = el * ea * (1.0_r8 - 0.5_r8 * y + y * y / 6.0_r8)
    else
      int_exp2 = ea * (-expm1_(-y)) / (b - a)
    end if
  end function int_exp2

  ! exp(x) - 1 accurate for small x.
  pure real(r8) function expm1_(x)
    real(r8), intent(in) :: x                        ! argument (-)
    if (abs(x) < 1.0e-5_r8) then
      expm1_ = x * (1.0_r8 + 0.5_r8 * x * (1.0_r8 + x / 3.0_r8))
    else
      expm1_ = exp(x) - 1.0_r8
    end if
  end function expm1_

  ! The band-independent quantities of twostream_both for the cosine of the zenith angle mu.
  pure subroutine twostream_geometry(chil_in, mu, lsai, g)
    real(r8), intent(in) :: chil_in                  ! leaf angle distribution index (-)
    real(r8), intent(in) :: mu                       ! cosine of the solar zenith angle, >= 1e-3 (-)
    real(r8), intent(in) :: lsai                     ! LAI + SAI (m2 m-2)
    type(ts_geom_t), intent(out) :: g                ! geometry (mixed)
    call leaf_angle_params(chil_in, g%chil, g%phi1, g%phi2, g%mubar)
    g%mu = mu
    g%gmu = g%phi1 + g%phi2 * mu
    g%extkb = g%gmu / mu
    g%tmp = mu * g%phi2 + g%gmu
    g%y = g%tmp / (mu * g%phi1)
    g%ly = 0.0_r8
    if (abs(g%y) >= 1.0e-3_r8) g%ly = log(1.0_r8 + g%y)
    g%s2 = exp(-min(g%extkb * lsai, 200.0_r8))
    g%ekl = exp(-g%extkb * lsai)
    g%t3 = int_exp(2.0_r8 * g%extkb, lsai)
  end subroutine twostream_geometry

  ! Two-stream canopy radiative transfer for one waveband, unit incoming flux, one incidence (twostream_both).
  pure subroutine twostream_band(chil_in, rho, tau, coszen, lsai, albg_dir, albg_dif, idir, &
                                 refl, absv, abssun, absg, tdn_dif)
    real(r8), intent(in) :: chil_in                  ! leaf angle distribution index (-)
    real(r8), intent(in) :: rho                      ! phytoelement reflectance (-)
    real(r8), intent(in) :: tau                      ! phytoelement transmittance (-)
    real(r8), intent(in) :: coszen                   ! cosine of the solar zenith angle, > 0 (-)
    real(r8), intent(in) :: lsai                     ! LAI + SAI (m2 m-2)
    real(r8), intent(in) :: albg_dir                 ! ground albedo, direct beam (-)
    real(r8), intent(in) :: albg_dif                 ! ground albedo, diffuse (-)
    integer, intent(in) :: idir                      ! 1 direct-beam incidence, 2 diffuse incidence (-)
    real(r8), intent(out) :: refl                    ! reflected fraction (canopy + ground albedo) (-)
    real(r8), intent(out) :: absv                    ! fraction absorbed by the vegetation (-)
    real(r8), intent(out) :: abssun                  ! fraction absorbed by sunlit phytoelements (-)
    real(r8), intent(out) :: absg                    ! fraction absorbed by the ground (-)
    real(r8), intent(out) :: tdn_dif                 ! diffuse downward flux at the ground (-)
    real(r8) :: refl2(2), absv2(2), abssun2(2), absg2(2), tdn2(2) ! results of both incidences (-)
    call twostream_both(chil_in, rho, tau, coszen, lsai, albg_dir, albg_dif, refl2, absv2, abssun2, absg2, tdn2)
    refl = refl2(idir)
    absv = absv2(idir)
    abssun = abssun2(idir)
    absg = absg2(idir)
    tdn_dif = tdn2(idir)
  end subroutine twostream_band

  ! Two-stream canopy radiative transfer for one waveband, unit incoming flux, direct-beam (index 1) and
  ! diffuse (index 2) incidence; the coefficients, exponentials and integrals are shared by both.
  ! Equations (x = cumulative LAI + SAI from the top, I_up / I_dn diffuse fluxes, K = G(mu)/mu):
  !   -mu_bar dI_up/dx + (1 - (1 - beta) omega) I_up - omega beta I_dn = omega mu_bar K beta0 exp(-K x)
  !    mu_bar dI_dn/dx + (1 - (1 - beta) omega) I_dn - omega beta I_up = omega mu_bar K (1 - beta0) exp(-K x)
  ! Boundary conditions: I_dn(0) = 0 (beam) or 1 (diffuse); I_up(L) = alb_dir exp(-K L) + alb_dif I_dn(L).
  ! Solution: two decaying modes plus the particular exp(-K x) term.
  pure subroutine twostream_both(chil_in, rho, tau, coszen, lsai, albg_dir, albg_dif, &
                                 refl, absv, abssun, absg, tdn_dif, geom, fsc, osn)
    real(r8), intent(in) :: chil_in                  ! leaf angle distribution index (-)
    real(r8), intent(in) :: rho                      ! phytoelement reflectance (-)
    real(r8), intent(in) :: tau                      ! phytoelement transmittance (-)
    real(r8), intent(in) :: coszen                   ! cosine of the solar zenith angle, > 0 (-)
    real(r8), intent(in) :: lsai                     ! LAI + SAI (m2 m-2)
    real(r8), intent(in) :: albg_dir                 ! ground albedo, direct beam (-)
    real(r8), intent(in) :: albg_dif                 ! ground albedo, diffuse (-)
    real(r8), intent(out) :: refl(2)                 ! reflected fraction (canopy + ground albedo) (-)
    real(r8), intent(out) :: absv(2)                 ! fraction absorbed by the vegetation (-)
    real(r8), intent(out) :: abssun(2)               ! fraction absorbed by sunlit phytoelements (-)
    real(r8), intent(out) :: absg(2)                 ! fraction absorbed by the ground (-)
    real(r8), intent(out) :: tdn_dif(2)              ! diffuse downward flux at the ground (-)
    type(ts_geom_t), intent(in), optional :: geom    ! twostream_geometry at max(coszen, 1e-3) if the caller has it
    real(r8), intent(in), optional :: fsc            ! fraction of the phytoelements covered by snow (-)
    real(r8), intent(in), optional :: osn            ! scattering coefficient of that snow in this band (-)
    type(ts_geom_t) :: g                             ! geometry used (mixed)
    real(r8) :: fs, omega_v                          ! snow-covered fraction used (-), element omega without snow (-)
    real(r8) :: chil, mubar                          ! leaf angle parameters (-)
    real(r8) :: mu, gmu, extkb                       ! cosine zenith, G(mu), K (-)
    real(r8) :: omega, upscat, asu, betao            ! scattering coefficient, omega beta, a_s, omega beta0 (-)
    real(r8) :: b, c, d, f, h, p                     ! two-stream coefficients (-)
    real(r8) :: det, alpha, gamma                    ! particular solution (-)
    real(r8) :: e1, s2                               ! exp(-h L), exp(-K L) (-)
    real(r8) :: a11, a12, a21, a22, r1, r2, det2     ! 2x2 boundary-condition system (-)
    real(r8) :: c1, c2                               ! mode amplitudes (-)
    real(r8) :: v0, beam                             ! top diffuse flux, beam flag (-)
    real(r8) :: t1, t2, t3, tmp, y                   ! integrals, a_s terms (-)
    integer :: idir                                  ! 1 direct-beam incidence, 2 diffuse incidence (-)

    if (present(geom)) then
      g = geom
    else
      call twostream_geometry(chil_in, max(coszen, 1.0e-3_r8), lsai, g)
    end if
    chil = g%chil
    mubar = g%mubar
    omega = rho + tau
    upscat = 0.5_r8 * (rho + tau + (rho - tau) * (0.5_r8 * (1.0_r8 + chil))**2)
    omega_v = omega
    fs = 0.0_r8
    if (present(fsc) .and. present(osn)) fs = min(max(fsc, 0.0_r8), 1.0_r8)
    if (fs > 0.0_r8) then
      omega = (1.0_r8 - fs) * omega_v + fs * osn
      upscat = (1.0_r8 - fs) * upscat + fs * osn * beta_sno
    end if
    b = 1.0_r8 - omega + upscat
    c = upscat
    h = sqrt(b * b - c * c) / mubar
    p = b + mubar * h

    ! Avoid the resonance K = h of the particular solution: move the sun by a negligible amount.
    if (abs(g%extkb - h) < 1.0e-6_r8 * h) call twostream_geometry(chil_in, g%mu * (1.0_r8 + 1.0e-5_r8), lsai, g)
    mu = g%mu
    gmu = g%gmu
    extkb = g%extkb
    ! single-scattering albedo a_s = omega/2 G int_0^1 x / (A + B x) dx, A = mu phi1, B = mu phi2 + G
    tmp = g%tmp
    y = g%y
    if (abs(y) < 1.0e-3_r8) then
      asu = 0.5_r8 * omega_v * gmu / (mu * g%phi1) * (0.5_r8 - y / 3.0_r8 + y * y / 4.0_r8 - y**3 / 5.0_r8)
    else
      asu = 0.5_r8 * omega_v * gmu / tmp * (1.0_r8 - g%ly / y)
    end if
    betao = (1.0_r8 + mubar * extkb) / (mubar * extkb) * asu
    if (fs > 0.0_r8) betao = (1.0_r8 - fs) * betao + fs * osn * beta_sno
    d = betao * mubar * extkb
    f = omega * mubar * extkb - d

    e1 = exp(-min(h * lsai, 200.0_r8))
    s2 = g%s2
    ! I_up = c1 p exp(-h (L - x)) + c2 c exp(-h x) + alpha exp(-K x)
    ! I_dn = c1 c exp(-h (L - x)) + c2 p exp(-h x) + gamma exp(-K x)
    a11 = c * e1
    a12 = p
    a21 = p - albg_dif * c
    a22 = e1 * (c - albg_dif * p)
    det2 = a11 * a22 - a12 * a21
    ! integrals for the sunlit absorption (below)
    t1 = int_exp2(extkb, h, lsai, g%ekl)
    t2 = int_exp(h + extkb, lsai)
    t3 = g%t3

    do idir = 1, 2
      if (idir == 1) then
        beam = 1.0_r8
        v0 = 0.0_r8
        det = b * b - c * c - (mubar * extkb)**2
        alpha = (d * (b - mubar * extkb) + c * f) / det
        gamma = ((b + mubar * extkb) * f + c * d) / det
      else
        beam = 0.0_r8
        v0 = 1.0_r8
        alpha = 0.0_r8
        gamma = 0.0_r8
      end if
      r1 = v0 - gamma
      r2 = (beam * albg_dir - alpha + albg_dif * gamma) * s2
      c1 = (r1 * a22 - a12 * r2) / det2
      c2 = (a11 * r2 - a21 * r1) / det2

      refl(idir) = c1 * p * e1 + c2 * c + alpha
      tdn_dif(idir) = c1 * c + c2 * p * e1 + gamma * s2
      absg(idir) = beam * (1.0_r8 - albg_dir) * s2 + (1.0_r8 - albg_dif) * tdn_dif(idir)
      absv(idir) = 1.0_r8 - refl(idir) - absg(idir)

      ! sunlit absorption: all of the intercepted beam, (1 - omega)(1 - exp(-K L)), plus the sunlit share
      ! exp(-K x) of the diffuse absorption, int (1 - omega) (I_up + I_dn)/mu_bar exp(-K x) dx
      abssun(idir) = (1.0_r8 - omega) * (((p + c) * (c1 * t1 + c2 * t2) + (alpha + gamma) * t3) / mubar &
                                         + beam * (1.0_r8 - s2))
      abssun(idir) = min(max(abssun(idir), 0.0_r8), max(absv(idir), 0.0_r8))
    end do
  end subroutine twostream_both

  ! Shortwave fluxes, albedos and the sunlit/shaded big leaves of one column.
  pure subroutine surface_radiation(coszen, swdown, vegpar, lai, sai, colpar, theta1, fsno, snowage, rad, fcansno)
    real(r8), intent(in) :: coszen                   ! cosine of the solar zenith angle (-)
    real(r8), intent(in) :: swdown                   ! incoming shortwave (W m-2)
    real(r8), intent(in) :: vegpar(NVP)              ! PFT parameters VP_* (mixed units)
    real(r8), intent(in) :: lai                      ! leaf area index, exposed above snow (m2 m-2)
    real(r8), intent(in) :: sai                      ! stem area index, exposed above snow (m2 m-2)
    real(r8), intent(in) :: colpar(NCP)              ! column parameters CP_* (soil colour albedos used) (mixed)
    real(r8), intent(in) :: theta1                   ! volumetric water (liquid + ice) of soil layer 1 (m3 m-3)
    real(r8), intent(in) :: fsno                     ! snow cover fraction of the ground (-)
    real(r8), intent(in) :: snowage                  ! non-dimensional snow age (-)
    type(surface_rad_t), intent(out) :: rad          ! results
    real(r8), intent(in), optional :: fcansno        ! fraction of the phytoelements covered by snow (-)
    real(r8) :: fcs                                  ! the same, 0 if absent (-)
    real(r8) :: albs(2)                              ! soil albedo (-)
    real(r8) :: albsn_dir(2), albsn_dif(2)           ! snow albedo (-)
    real(r8) :: rho, tau                             ! phytoelement optics (-)
    real(r8) :: wl, ws                               ! leaf and stem fractions of LAI + SAI (-)
    real(r8) :: lsai                                 ! LAI + SAI (m2 m-2)
    real(r8) :: refl(2), absv(2), abssun(2), absg(2), tdn(2) ! two-stream results, beam and diffuse (-)
    type(ts_geom_t) :: geom                          ! sun and leaf angle terms of the two-stream solution (mixed)
    real(r8) :: ikn, iknk                            ! int_0^LAI exp(-kn x) dx, same for kn + K (m2 m-2)
    real(r8) :: extk_leaf                            ! K per unit leaf depth, K (L+S)/L (-)
    real(r8) :: kn                                   ! nitrogen extinction coefficient (-)
    real(r8) :: par_sun, par_sha                     ! PAR absorbed by sunlit / shaded leaves (W m-2 ground)
    real(r8) :: fsn                                  ! bounded snow fraction (-)
    integer :: ib, id

    lsai = lai + sai
    kn = max(vegpar(VP_EXTKN), 0.0_r8)
    rad%vegetated = 0
    if (is_vegetated(vegpar(VP_ISVEG), lai, sai)) rad%vegetated = 1

    ! All leaves shaded unless the sun is up; shaded nitrogen factor = canopy mean.
    if (rad%vegetated == 1 .and. lai > 0.0_r8) then
      ikn = int_exp(kn, lai)
      rad%lai_sha = lai
      rad%fn_sha = ikn / lai
    end if
    if (coszen <= 0.0_r8 .or. swdown <= 0.0_r8) return

    rad%swdown = swdown
    call partition_shortwave(swdown, rad%sw)
    fsn = min(max(fsno, 0.0_r8), 1.0_r8)
    call soil_albedo([colpar(CP_ALBSAT_VIS), colpar(CP_ALBSAT_NIR)], &
                     [colpar(CP_ALBDRY_VIS), colpar(CP_ALBDRY_NIR)], theta1, albs)
    call snow_albedo_bats(coszen, snowage, albsn_dir, albsn_dif)
    rad%albg(:,1) = (1.0_r8 - fsn) * albs + fsn * albsn_dir
    rad%albg(:,2) = (1.0_r8 - fsn) * albs + fsn * albsn_dif

    par_sun = 0.0_r8
    par_sha = 0.0_r8
    fcs = 0.0_r8
    if (present(fcansno)) fcs = fcansno
    if (rad%vegetated == 1) then
      wl = lai / lsai
      ws = sai / lsai
      call twostream_geometry(vegpar(VP_CHIL), max(coszen, 1.0e-3_r8), lsai, geom)
      do ib = 1, 2
        if (ib == 1) then
          rho = wl * vegpar(VP_RHO_VIS) + ws * rho_stem(1)
          tau = wl * vegpar(VP_TAU_VIS) + ws * tau_stem(1)
        else
          rho = wl * vegpar(VP_RHO_NIR) + ws * rho_stem(2)
          tau = wl * vegpar(VP_TAU_NIR) + ws * tau_stem(2)
        end if
        call twostream_both(vegpar(VP_CHIL), rho, tau, coszen, lsai, rad%albg(ib,1), rad%albg(ib,2), &
                            refl, absv, abssun, absg, tdn, geom=geom, fsc=fcs, osn=omega_sno(ib))
        do id = 1, 2
          rad%alb(ib,id) = refl(id)
          rad%fabv(ib,id) = absv(id)
          rad%fabg(ib,id) = absg(id)
          if (ib == 1) then
            par_sun = par_sun + wl * rad%sw(ib,id) * abssun(id)
            par_sha = par_sha + wl * rad%sw(ib,id) * (absv(id) - abssun(id))
          end if
        end do
      end do
      rad%extkb = geom%extkb
      rad%fsun = int_exp(rad%extkb, lsai, ea=geom%ekl) / lsai
      if (lai > 0.0_r8) then
        rad%lai_sun = lai * rad%fsun
        rad%lai_sha = lai - rad%lai_sun
        ! Nitrogen-weighted Vcmax factors of the two big leaves (depth x in leaf area, exp(-kn x) profile).
        extk_leaf = rad%extkb * lsai / lai
        iknk = int_exp(kn + extk_leaf, lai)
        rad%fn_sun = iknk / max(int_exp(extk_leaf, lai), 1.0e-12_r8)
        if (rad%lai_sha > 1.0e-12_r8) then
          rad%fn_sha = (ikn - iknk) / rad%lai_sha
        else
          rad%fn_sha = rad%fn_sun
        end if
        if (rad%lai_sun > 1.0e-12_r8) rad%apar_sun = par_sun / rad%lai_sun
        if (rad%lai_sha > 1.0e-12_r8) rad%apar_sha = par_sha / rad%lai_sha
      end if
    else
      rad%alb = rad%albg
      rad%fabv = 0.0_r8
      rad%fabg = 1.0_r8 - rad%albg
    end if

    rad%sabv = sum(rad%sw * rad%fabv)
    rad%sabg = sum(rad%sw * rad%fabg)
    rad%swref = sum(rad%sw * rad%alb)
    rad%swnet = rad%sabv + rad%sabg
    rad%albedo = rad%swref / swdown
  end subroutine surface_radiation
end module colm_radiation
